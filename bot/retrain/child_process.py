"""Running a training command as a child process that cannot starve the bot.

    child = await Child.start([sys.executable, "-m", "training", "finetune", ...])
    async for event in child.events(deadline=loop.time() + 600):   # {"event": "progress", ...}
        ...
    code = await child.finish(deadline)          # or ChildTimeout; child.stop() to cancel it

The child gets one torch/OpenMP thread (``OMP_NUM_THREADS=1``; the command should also pass
``--threads 1``) and a lowered priority (``NICE`` above the bot's), so the bot's event loop and its
generation thread keep their cores. It runs in its own session, so a Ctrl-C meant for the bot does not
reach it (the bot stops it itself). Its stdout is read as JSON lines (anything else is logged and
skipped); the last lines of its stderr are kept for the error message. Past the deadline it is killed.
If the bot dies without stopping it, the child's next write to its closed stdout fails and it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

NICE = 10  # added to the bot's own niceness
STOP_GRACE_S = 5.0  # after SIGTERM, how long before SIGKILL
_log = logging.getLogger(__name__)


class ChildTimeout(Exception):
    """The child was still running at its deadline (it has been killed)."""


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The bot's environment with one thread for every math library, ``extra`` on top (e.g.
    ``PGPASSWORD``). The child imports ``training`` from the same installation as the bot
    (``sys.executable -m training``), so no PYTHONPATH is set."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    env.pop("DISCORD_TOKEN", None)  # training has no use for the bot's secret
    env.pop("DATABASE_URL", None)  # it gets the store's URL without the password, and the password apart
    env.update(extra or {})
    return env


def describe_exit(code: int) -> str:
    """``-9`` -> ``killed by signal SIGKILL``; ``2`` -> ``exit status 2``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


class Child:
    """One running child process whose stdout carries JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(
        cls, argv: Sequence[str], cwd: str | Path | None = None, env: Mapping[str, str] | None = None
    ) -> Child:
        """Start ``argv`` at a lowered priority with one thread."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_environment(env),
            cwd=cwd,
            start_new_session=True,
        )
        # Set from here rather than in a preexec_fn, which is unsafe in a process with threads (the bot has
        # the model host's and aiosqlite's); the child is a moment at normal priority while Python starts.
        with contextlib.suppress(OSError):
            own = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, process.pid, min(19, own + NICE))
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _drain_stderr(self) -> None:
        # Always read it: a child that fills the pipe would block forever on its next warning.
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    async def events(self, deadline: float) -> AsyncIterator[dict]:
        """The JSON objects the child prints, until its stdout closes; ``ChildTimeout`` past ``deadline``."""
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), deadline - loop.time())
            except asyncio.TimeoutError:
                await self.kill()
                raise ChildTimeout() from None
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                yield event
            elif text:
                _log.debug("child %d said: %s", self.pid, text)

    async def finish(self, deadline: float) -> int:
        """Wait for the exit (after ``events`` ended); its exit code (negative: killed by that signal)."""
        loop = asyncio.get_running_loop()
        try:
            code = await asyncio.wait_for(self.process.wait(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            await self.kill()
            raise ChildTimeout() from None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stderr_task, 1.0)  # the last words, if it is still writing them
        return code

    def error_line(self) -> str | None:
        """The child's own ``error: ...`` line, or its last line on stderr."""
        lines = [line for line in self.stderr_tail if line.strip()]
        for line in reversed(lines):
            if line.startswith("error:"):
                return line[len("error:") :].strip()
        return lines[-1] if lines else None

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM); ``kill`` follows if it does not."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    async def kill(self) -> None:
        """Kill the child now (SIGKILL) and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, a few seconds' grace, then SIGKILL; returns once the child is gone."""
        self.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE_S)
        except asyncio.TimeoutError:
            await self.kill()
