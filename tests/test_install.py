"""The package as a user installs it: a wheel built from a copy of the sources, installed into a fresh
virtual environment outside the repository, run from a folder that is not the repository.

The fresh environment reuses the dependencies already installed here (torch, discord.py, ...) through a
``.pth`` line, so no download happens and the test stays fast; ``quotebot`` itself (with the bundled
model) comes only from the wheel, which the first test checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.packaging import clean_env, copy_tree, fresh_venv, pip_into

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv holding only the wheel (dependencies borrowed from here)."""
    root = tmp_path_factory.mktemp("install")
    source = copy_tree(REPO, root / "src")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "-q", "-w", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("quotebot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "quotebot_data/models/default.pt" in names and "quotebot_data/sample_quotes.txt" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)

    venv_bin = fresh_venv(root / "venv")
    subprocess.run([*pip_into(venv_bin), "-q", str(wheel)], check=True, capture_output=True)
    return venv_bin


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working folder that is not the repository and has no .env."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def run(command: list[str | Path], cwd: Path, stdin: str = "", timeout: float = 180, **env: str):
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=clean_env(**env), input=stdin,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_the_wheel_is_what_runs(installed: Path, outside: Path):
    probe = "import bot, model.bundled as b; print(bot.__file__); print(b.DEFAULT_CHECKPOINT)"
    done = run([installed / "python", "-c", probe], outside)
    assert done.returncode == 0, done.stderr
    code_file, checkpoint = (Path(line) for line in done.stdout.splitlines())
    venv = installed.parent
    assert code_file.is_relative_to(venv) and checkpoint.is_relative_to(venv), done.stdout
    assert checkpoint.is_file() and not code_file.is_relative_to(REPO)


def test_quotebot_console_writes_a_quote_from_anywhere(installed: Path, outside: Path):
    done = run([installed / "quotebot", "--console"], outside, stdin="!quote Hey, --len 60 --rng 3\n")
    assert done.returncode == 0, done.stderr
    assert "Hey," in done.stdout
    assert (outside / "quotebot.db").is_file()  # DB_PATH's default is relative to where it runs
    help_text = run([installed / "quotebot", "--help"], outside)
    assert help_text.returncode == 0 and "--console" in help_text.stdout


def test_quotebot_train_and_a_retrain_child_from_the_install(installed: Path, outside: Path):
    tiny = ["--hidden", "32", "--embed", "16", "--layers", "1", "--epochs", "1", "--batch-size", "32"]
    tiny += ["--voice-samples", "16"]  # the voice fit is tests/model/test_training_voice.py's subject
    base = outside / "base.pt"
    # No --corpus path of the repository: the bundled sample corpus, as the installed package has it.
    corpus = run(
        [installed / "python", "-c", "from model.bundled import SAMPLE_CORPUS as c; print(c)"], outside
    )
    train = [installed / "quotebot-train", "train", "--corpus", corpus.stdout.strip(), *tiny]
    done = run([*train, "--progress", "none", "--threads", "1", "--out", base], outside)
    assert done.returncode == 0, done.stderr
    assert base.is_file()

    # The retrain's finetune child exactly as the bot starts it: sys.executable -m training, no PYTHONPATH.
    guild = outside / "guild.txt"
    lines = [f"Hey, the printer is on strike for the {n}th time." for n in range(4, 16)]
    guild.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = outside / "guild.pt"
    script = f"""
import asyncio, json, sys
from bot.retrain.child_process import Child, child_environment

async def main():
    assert "PYTHONPATH" not in child_environment()
    argv = [sys.executable, "-m", "training", "finetune", "--from", {str(base)!r}, "--corpus", {str(guild)!r},
            "--out", {str(out)!r}, "--epochs", "2", "--threads", "1", "--progress", "jsonl",
            "--voice-samples", "16"]
    child = await Child.start(argv)
    loop = asyncio.get_running_loop()
    events = [event async for event in child.events(loop.time() + 150)]
    print(json.dumps({{"code": await child.finish(loop.time() + 30), "events": len(events),
                      "error": child.error_line()}}))

asyncio.run(main())
"""
    done = run([installed / "python", "-c", script], outside)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, result
    assert result["events"] > 0 and out.is_file()
    # The base model recorded the bundled corpus as data/sample_quotes.txt; the install found it to replay.
    base_info = run([installed / "python", "-m", "model", "info", base], outside).stdout
    assert "corpus: data/sample_quotes.txt" in base_info, base_info
    info = run([installed / "python", "-m", "model", "info", out], outside).stdout
    assert "base_corpus: data/sample_quotes.txt" in info and "replay_source: corpus" in info, info
