"""The bot's life under a supervisor, as a process: SIGTERM waits for a quote being written, but only up
to SHUTDOWN_TIMEOUT_SECONDS; a second SIGTERM exits at once with status 1."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from model.bundled import DEFAULT_CHECKPOINT
from tests.discord.test_bot import run_bot_process, subprocess_env
from tests.discord_server import DiscordServer

pytestmark = [pytest.mark.slow, pytest.mark.discord]
TYPING = ("POST", "/channels/{channel_id}/typing")


async def bot_writing_a_long_quote(server: DiscordServer, tmp_path: Path, **env: str):
    """A bot process that has taken a quote request and holds it for at least a second (the batch wait)."""
    settings = subprocess_env(server, DEFAULT_CHECKPOINT, GENERATION_BATCH_WAIT_MS="1000", **env)
    proc = await run_bot_process(settings, tmp_path)
    await server.wait_for_session(timeout=60)
    await server.user_sends(server.member, "!quote Hey, --len 1000")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not server.calls(*TYPING):  # the cog types while the model writes
        assert loop.time() < deadline, "the bot never started the quote"
        await asyncio.sleep(0.01)
    return proc


async def finish(proc: asyncio.subprocess.Process, timeout: float) -> str:
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return err.decode()


async def test_a_second_sigterm_exits_at_once(discord_server: DiscordServer, tmp_path: Path):
    proc = await bot_writing_a_long_quote(discord_server, tmp_path, SHUTDOWN_TIMEOUT_SECONDS="600")
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = await finish(proc, 10)  # far less than the 600 s the first SIGTERM would wait
    assert proc.returncode == 1, err[-2000:]
    assert "finishing replies in flight" in err and "exiting now without finishing" in err


async def test_sigterm_waits_no_longer_than_the_shutdown_timeout(
    discord_server: DiscordServer, tmp_path: Path
):
    proc = await bot_writing_a_long_quote(discord_server, tmp_path, SHUTDOWN_TIMEOUT_SECONDS="0.2")
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc.send_signal(signal.SIGTERM)
    err = await finish(proc, 30)
    assert proc.returncode == 0, err[-2000:]
    assert "still in flight" in err  # it stopped waiting for the quote
    assert loop.time() - started < 5
    # The member whose quote was cut short is told so, if the connection was still there to say it.
    replies = [m.content for m in discord_server.bot_messages()]
    assert all("shutting down" in r for r in replies), replies
