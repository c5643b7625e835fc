"""Running the real bot against the Discord test server: its settings, a started bot, a member's message."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from bot.app import QuoteBot, create_bot
from bot.settings import Settings, load_settings
from tests.discord_server import DiscordServer


def bot_settings(server: DiscordServer, checkpoint: Path, **extra: str) -> Settings:
    env = {
        **server.env(),
        "MODEL_PATH": str(checkpoint),
        "DEVICE": "cpu",
        "SYNC_COMMANDS": "true",
        "MAX_SEED_CHARS": "60",
        "MAX_QUOTE_CHARS": "120",
        "QUOTE_COOLDOWN_SECONDS": "30",
        "DB_PATH": str(Path(tempfile.mkdtemp(prefix="quotebot-test-")) / "bot.db"),
        **extra,
    }
    return load_settings(env, env_file=None)


@contextlib.asynccontextmanager
async def running(settings: Settings, timeout: float = 15.0) -> AsyncIterator[QuoteBot]:
    """The real bot, started and ready; closed (and its task awaited) afterwards."""
    bot = create_bot(settings, guild_ready_timeout=0.1)
    assert settings.token is not None
    task = asyncio.create_task(bot.start(settings.token.get()))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not bot.is_ready():
            if task.done():
                task.result()
                raise AssertionError("the bot stopped before it was ready")
            assert loop.time() < deadline, "the bot was not ready in time"
            await asyncio.sleep(0.01)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, timeout)


async def ask(server: DiscordServer, content: str, user=None):
    """A member posts ``content``; returns (their message, the bot's reply)."""
    sent = await server.user_sends(user or server.member, content)
    reply = await server.wait_for_message(server.channel, timeout=10)
    return sent, reply


def votes(db_path: Path) -> list[tuple[int, int]]:
    """The (quote id, user id) of every vote stored in the bot's SQLite file, sorted."""
    with sqlite3.connect(db_path) as db:
        return sorted(db.execute("SELECT quote_id, user_id FROM votes"))
