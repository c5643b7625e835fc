"""The buttons under a quote and the message context menus, end to end, across a restart of the bot.

A quote posted by one bot process gets its buttons pressed after a fresh bot started on the same
database: the buttons are ``DynamicItem``s keyed by the stored quote's id, so nothing is kept in memory.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.discord.helpers import ask, bot_settings, running, votes
from tests.discord_server import DiscordServer

pytestmark = pytest.mark.discord


@pytest.fixture
def settings(discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path):
    return bot_settings(discord_server, mention_checkpoint, DB_PATH=str(tmp_path / "bot.db"))


async def recorded(db_path: Path, message_id: int) -> int:
    """The stored quote id of a posted message (recorded just after sending)."""
    for _ in range(200):
        with sqlite3.connect(db_path) as db:
            row = db.execute("SELECT id FROM quotes WHERE message_id = ?", (message_id,)).fetchone()
        if row:
            return row[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} was never recorded")


async def test_buttons_work_after_a_restart(discord_server: DiscordServer, settings):
    server, db_path = discord_server, settings.db_path
    async with running(settings):
        _sent, quote = await ask(server, "!quote Hey, --temp 0.6")
        quote_id = await recorded(db_path, quote.id)
    assert [b["custom_id"] for b in quote.buttons()] == [
        f"quote:{a}:{quote_id}" for a in ("another", "star", "info")
    ]

    async with running(settings):  # a new process: no view was ever added in memory for this quote
        star = quote.button("⭐")["custom_id"]
        record = await server.press_button(server.admin, quote, star)
        await server.wait_for(lambda: record.response_type, what="the star's answer")
        assert record.response_type == 7 and votes(db_path) == [(quote_id, server.admin.id)]
        assert quote.button("⭐")["label"] == "1" and quote.edited is False  # the count, on the same message

        # Each press waits for its own answer: the label alone could still read "1" from the first press.
        back = await server.press_button(server.admin, quote, star)  # pressed again: the vote is taken back
        await server.wait_for(lambda: back.response_type, what="the vote taken back")
        assert votes(db_path) == [] and quote.button("⭐")["label"] == "0"
        once_more = await server.press_button(server.admin, quote, star)
        await server.wait_for(lambda: once_more.response_type, what="one vote")
        assert quote.button("⭐")["label"] == "1"
        # The requester's own star is not a vote: a private answer, and nothing counted.
        own = await server.press_button(server.member, quote, star)
        refusal = await server.wait_for_message(timeout=10)
        assert "not a vote" in refusal.content and own.private and own.response_type == 4
        assert votes(db_path) == [(quote_id, server.admin.id)]

        info = await server.press_button(server.member, quote, quote.button("Info")["custom_id"])
        details = await server.wait_for_message(timeout=10)
        assert f"Quote #{quote_id}: 1 vote" in details.content and "temperature 0.6" in details.content
        assert info.private and info.response_type == 4

        another = await server.press_button(server.member, quote, quote.button("Another")["custom_id"])
        new = await server.wait_for_message(timeout=10)
        assert new.content.startswith("Hey,") and not new.ephemeral and another.response_type == 5
        new_id = await recorded(db_path, new.id)
        assert new_id != quote_id and new.buttons()[0]["custom_id"] == f"quote:another:{new_id}"
        # Another is under the presser's cooldown, and says so privately, before any defer.
        again = await server.press_button(server.member, quote, quote.button("Another")["custom_id"])
        slow = await server.wait_for_message(timeout=10)
        assert "slow down" in slow.content.lower() and again.private and again.response_type == 4


async def test_a_reaction_and_the_star_button_are_the_same_vote(discord_server: DiscordServer, settings):
    server, db_path = discord_server, settings.db_path
    async with running(settings):
        _sent, quote = await ask(server, "!quote Hey,")
        quote_id = await recorded(db_path, quote.id)
        await server.add_reaction(server.admin, quote, "⭐")  # not the requester: their own star is no vote
        await server.wait_for(lambda: votes(db_path) or None, what="the reaction's vote")
        # The button follows the reactions' count too.
        await server.wait_for(lambda: quote.button("⭐")["label"] == "1" or None, what="the count")
        await server.press_button(server.admin, quote, quote.button("⭐")["custom_id"])
        await server.wait_for(lambda: quote.button("⭐")["label"] == "0" or None, what="the vote taken back")
        assert votes(db_path) == [] and quote_id


async def test_a_button_of_another_servers_quote_changes_nothing(discord_server: DiscordServer, settings):
    server, db_path = discord_server, settings.db_path
    async with running(settings):
        _sent, quote = await ask(server, "!quote Hey,")
        quote_id = await recorded(db_path, quote.id)
        with sqlite3.connect(db_path) as db:  # as if the quote had been posted in another server
            db.execute("UPDATE quotes SET guild_id = 1 WHERE id = ?", (quote_id,))
        record = await server.press_button(server.member, quote, quote.button("⭐")["custom_id"])
        refusal = await server.wait_for_message(timeout=10)
        assert "not one of my quotes" in refusal.content and record.private
        assert votes(db_path) == []


async def test_context_menus_continue_a_message_and_show_a_quotes_info(
    discord_server: DiscordServer, settings
):
    server, db_path = discord_server, settings.db_path
    async with running(settings):
        said = await server.user_sends(server.member, "Well, " + "x" * 80)  # longer than MAX_SEED_CHARS (60)
        record = await server.run_message_command(server.admin, said, "Continue as quote")
        quote = await server.wait_for_message(timeout=10)
        assert quote.content.startswith("Well, " + "x" * 54) and record.response_type == 5
        quote_id = await recorded(db_path, quote.id)
        with sqlite3.connect(db_path) as db:
            assert (
                db.execute("SELECT seed FROM quotes WHERE id = ?", (quote_id,)).fetchone()[0]
                == "Well, " + "x" * 54
            )

        odd = await server.user_sends(server.member, "Hey \u2603")
        refused = await server.run_message_command(server.member, odd, "Continue as quote")
        assert "snowman" in (await server.wait_for_message(timeout=10)).content and refused.private

        info = await server.run_message_command(server.member, quote, "Quote info")
        details = await server.wait_for_message(timeout=10)
        assert f"Quote #{quote_id}" in details.content and info.private
        not_mine = await server.run_message_command(server.member, said, "Quote info")
        assert "not one of my quotes" in (await server.wait_for_message(timeout=10)).content
        assert not_mine.private
