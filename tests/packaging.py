"""Helpers of the install and deploy tests: a copy of the sources, a fresh virtual environment that
borrows this one's dependencies (torch, discord.py, ...) so nothing is downloaded, and a clean
environment for the commands run from it."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.helpers import REPO

# What a clone holds that a build must not depend on (caches, local runs, the developer's venv).
SKIP_AT_ROOT = {".venv", ".git", "build", "runs", "scratch", "models", ".pytest_cache", ".ruff_cache", ".env"}
SKIP_ANYWHERE = {"__pycache__", "quotebot.egg-info"}


def copy_tree(source: Path, dest: Path) -> Path:
    """``source`` (the repository or a folder of it) copied to ``dest``, without caches and local data."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in SKIP_ANYWHERE or n.endswith((".db", ".pyc"))}
        if Path(folder) == REPO:
            skip |= {n for n in names if n in SKIP_AT_ROOT}
        return skip

    if source.is_dir():
        shutil.copytree(source, dest, ignore=ignore, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return dest


def fresh_venv(folder: Path) -> Path:
    """A venv without pip whose ``site-packages`` ends with this environment's (for the dependencies
    only: quotebot itself is installed here in editable mode, through a finder a ``.pth`` line does not
    load). Returns its ``bin`` folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    borrowed = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    Path(purelib, "borrowed-deps.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")
    return folder / "bin"


def pip_into(venv_bin: Path) -> list[str]:
    """``pip install`` into ``venv_bin``'s environment, offline, without dependencies (borrowed)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv_bin / "python"),
        "install",
        "--no-deps",
        "--no-index",
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that points back at the repository or a token."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("DISCORD_")}
    env.update({"DEVICE": "cpu", "OMP_NUM_THREADS": "1", **extra})
    return env
