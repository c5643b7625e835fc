"""bot.retrain.child_process with real child processes: priority, threads, JSON lines, errors, the
deadline."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from bot.retrain.child_process import NICE, Child, ChildTimeout, describe_exit

REPORT = (
    "import json, os, sys\n"
    "print(json.dumps({'event': 'env', 'omp': os.environ.get('OMP_NUM_THREADS'),"
    " 'nice': os.nice(0), 'token': os.environ.get('DISCORD_TOKEN'), 'path': sys.path}), flush=True)\n"
    "print('a plain line, not JSON', flush=True)\n"
    "print(json.dumps({'event': 'done'}), flush=True)\n"
)


def deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def collect(child: Child, seconds: float = 30.0) -> list[dict]:
    return [event async for event in child.events(deadline(seconds))]


async def test_a_child_runs_at_lower_priority_with_one_thread_and_no_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DISCORD_TOKEN", "not-for-children")
    child = await Child.start([sys.executable, "-c", REPORT])
    events = await collect(child)
    assert await child.finish(deadline(10)) == 0
    assert [e["event"] for e in events] == ["env", "done"]  # the plain line is skipped
    env = events[0]
    assert env["omp"] == "1"
    assert env["nice"] == min(19, os.nice(0) + NICE)
    assert env["token"] is None


async def test_the_error_line_and_exit_status_are_kept():
    code = (
        "import sys\nprint('warming up', file=sys.stderr)\nprint('error: no quotes found', file=sys.stderr)\n"
    )
    child = await Child.start([sys.executable, "-c", code + "sys.exit(2)"])
    assert await collect(child) == []
    assert await child.finish(deadline(10)) == 2
    assert child.error_line() == "no quotes found"
    assert describe_exit(2) == "exit status 2"


async def test_a_child_past_its_deadline_is_killed():
    child = await Child.start([sys.executable, "-c", "import time; print('{}', flush=True); time.sleep(60)"])
    with pytest.raises(ChildTimeout):
        await collect(child, seconds=1.0)
    assert child.process.returncode is not None  # killed and reaped, not left running


async def test_stop_ends_a_child_and_reports_the_signal():
    child = await Child.start([sys.executable, "-c", "import time; time.sleep(60)"])
    await child.stop()
    assert child.process.returncode == -15
    assert describe_exit(child.process.returncode) == "killed by signal SIGTERM"
    assert describe_exit(-9) == "killed by signal SIGKILL"
