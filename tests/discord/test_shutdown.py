"""The bot's close, end to end, with events that still arrive while it closes.

The gateway stays open until the very end of ``close()``, so a button press, a reaction or a command can
still come in while the bot waits for the work in flight, and even after the store has closed. These
tests deliver each of them at a chosen moment: the store's close is wrapped by a hook that runs the
event (and waits for the bot's answer) right after the real close, and the wait for the work in flight
is held open by a piece of tracked work the test releases. No sleeps decide what happens first.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import QuoteBot, create_bot
from tests.discord.helpers import ask, bot_settings, running, votes
from tests.discord_server import DiscordServer
from tests.discord_server.interaction_record import InteractionRecord
from tests.helpers import free_port

pytestmark = pytest.mark.discord
STORE_GONE = "no active connection"  # aiosqlite's error for a closed connection


@pytest.fixture
def settings(discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path):
    return bot_settings(discord_server, mention_checkpoint, DB_PATH=str(tmp_path / "bot.db"))


async def posted_quote(server: DiscordServer, db_path: Path):
    """A quote the bot posted and stored (its message id recorded, so ⭐ on it is a vote)."""
    _sent, quote = await ask(server, "!quote Hey,")
    await server.wait_for(lambda: stored_id(db_path, quote.id), what="the quote's message recorded")
    return quote


def stored_id(db_path: Path, message_id: int) -> int | None:
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT id FROM quotes WHERE message_id = ?", (message_id,)).fetchone()
    return row[0] if row else None


def after_the_store_closes(bot: QuoteBot, event: Callable[[], Awaitable[None]]) -> None:
    """Runs ``event`` inside the bot's close, just after its store closed (the gateway is still open)."""
    assert bot.store is not None
    real_close = bot.store.close

    async def close_then_event() -> None:
        await real_close()
        await event()

    bot.store.close = close_then_event  # type: ignore[method-assign]


async def answered(server: DiscordServer, record: InteractionRecord) -> InteractionRecord:
    await server.wait_for(lambda: record.messages or None, timeout=10, what="the interaction's answer")
    return record


async def test_a_star_press_after_the_store_closed_is_refused_privately(
    discord_server: DiscordServer, settings, caplog: pytest.LogCaptureFixture
):
    server = discord_server
    presses: list[InteractionRecord] = []
    async with running(settings) as bot:
        quote = await posted_quote(server, settings.db_path)

        async def press_star() -> None:
            record = await server.press_button(server.admin, quote, quote.button("⭐")["custom_id"])
            presses.append(await answered(server, record))

        after_the_store_closes(bot, press_star)
    (press,) = presses
    assert press.private and press.response_type == 4
    assert "shutting down" in press.messages[0].content and "⭐ again" in press.messages[0].content
    assert STORE_GONE not in caplog.text and votes(settings.db_path) == []


async def test_a_reaction_after_the_store_closed_is_logged_not_counted(
    discord_server: DiscordServer, settings, caplog: pytest.LogCaptureFixture
):
    server = discord_server
    seen: list[str] = []

    def handled() -> str | None:  # the bot's handler has run: it logged the reaction either way
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        return next((line for line in lines if "reaction" in line or "raw_reaction" in line), None)

    async with running(settings) as bot:
        quote = await posted_quote(server, settings.db_path)

        async def react() -> None:
            await server.add_reaction(server.admin, quote, "⭐")
            seen.append(await server.wait_for(handled, timeout=10, what="the reaction handled"))

        after_the_store_closes(bot, react)
    assert seen and "not counted: the bot is shutting down" in seen[0]
    assert STORE_GONE not in caplog.text and votes(settings.db_path) == []


@pytest.mark.parametrize("how", ["prefix", "slash"])
async def test_a_command_after_the_store_closed_is_told_shutting_down(
    discord_server: DiscordServer, settings, caplog: pytest.LogCaptureFixture, how: str
):
    server = discord_server
    answers: list[tuple[str, bool]] = []
    async with running(settings) as bot:
        await posted_quote(server, settings.db_path)

        async def top() -> None:
            if how == "prefix":
                _sent, reply = await ask(server, "!top")
                answers.append((reply.content, True))
            else:
                record = await answered(server, await server.run_slash_command(server.member, "top"))
                answers.append((record.messages[0].content, record.private))

        after_the_store_closes(bot, top)
    ((text, private),) = answers
    assert "shutting down" in text and private  # an interaction's refusal is ephemeral
    assert STORE_GONE not in caplog.text and "error id" not in text


async def test_votes_that_arrive_while_replies_finish_are_stored_and_new_work_is_refused(
    discord_server: DiscordServer, settings
):
    server, db_path = discord_server, settings.db_path
    async with running(settings) as bot:
        quote = await posted_quote(server, db_path)
        quote_id = stored_id(db_path, quote.id)
        release, holding = asyncio.Event(), asyncio.Event()

        async def reply_in_flight() -> None:  # holds the close's wait for the work in flight
            async with bot.in_flight.track():
                holding.set()
                await release.wait()

        held = asyncio.create_task(reply_in_flight())
        await asyncio.wait_for(holding.wait(), 10)
        try:
            closing = asyncio.create_task(bot.close())
            await server.wait_for(lambda: bot.in_flight.closing or None, what="the close begun")

            await server.add_reaction(server.admin, quote, "⭐")  # a vote while closing: still counted
            await server.wait_for(lambda: votes(db_path) or None, what="the reaction's vote")
            assert votes(db_path) == [(quote_id, server.admin.id)]
            press = await server.press_button(server.admin, quote, quote.button("⭐")["custom_id"])
            await server.wait_for(lambda: press.response_type, what="the star's answer")
            assert press.response_type == 7 and votes(db_path) == []  # the button took the vote back

            _sent, refused = await ask(server, "!quote Hi")  # new work is refused, clearly
            assert "shutting down" in refused.content
            slash = await answered(server, await server.run_slash_command(server.member, "top"))
            assert "shutting down" in slash.messages[0].content and slash.private
            info = await answered(
                server, await server.press_button(server.member, quote, quote.button("Info")["custom_id"])
            )
            assert "shutting down" in info.messages[0].content and info.private

            assert not closing.done()  # still waiting for the reply in flight
        finally:
            release.set()  # a failed assertion must not hold the close for its whole timeout
        await asyncio.wait_for(closing, 10)
        await held
        assert bot.is_closed() and not bot.host.started


async def test_the_async_with_block_ends_only_when_the_whole_close_has(
    discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path
):
    """As ``python -m bot`` runs: the close starts in a task of its own (the SIGTERM handler's), and
    ``bot.start()`` returns as soon as the gateway closes; leaving ``async with bot`` then must wait for
    the rest, or ``asyncio.run`` cancels it half-way."""
    settings = bot_settings(
        discord_server, mention_checkpoint, HEALTH_PORT=str(free_port()), DB_PATH=str(tmp_path / "bot.db")
    )
    bot = create_bot(settings, guild_ready_timeout=0.1)
    steps: list[str] = []

    async def serve() -> None:
        async with bot:
            assert settings.token is not None
            await bot.start(settings.token.get())
        steps.append("block ended")

    serving = asyncio.create_task(serve())
    await discord_server.wait_for(lambda: bot.is_ready() or None, timeout=15, what="the bot ready")
    assert bot.health is not None
    real_stop = bot.health.stop

    async def last_step_takes_a_moment() -> None:  # the step after the gateway's close
        await asyncio.sleep(0.2)
        await real_stop()
        steps.append("health stopped")

    bot.health.stop = last_step_takes_a_moment  # type: ignore[method-assign]
    closing = asyncio.create_task(bot.close())
    await asyncio.wait_for(serving, 15)
    assert steps == ["health stopped", "block ended"]
    await closing
