"""Scheduled posts end to end: the real QuoteBot and discord.py against the local Discord test server.

The scheduler's clock is the one thing replaced (``cog.scheduler.clock``), so a 10-minute schedule falls due
when the test says; the loop itself runs for real, every 0.05 s (``SCHEDULE_CHECK_SECONDS``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.app import QuoteBot
from bot.schedules.store import Schedule
from bot.settings import Settings
from bot.storage.store import Quote
from tests.discord.helpers import bot_settings, running
from tests.discord_server import DiscordServer, Overwrite, Perm, StoredMessage, User

pytestmark = pytest.mark.discord
UTC = timezone.utc
TICK = 0.05


class Clock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings_for(server: DiscordServer, checkpoint: Path, db: Path, **extra: str) -> Settings:
    return bot_settings(server, checkpoint, DB_PATH=str(db), SCHEDULE_CHECK_SECONDS=str(TICK), **extra)


def cog_of(bot: QuoteBot) -> Any:
    # load_extension runs the module afresh, so its class is not the one this file could import.
    cog = bot.get_cog("Schedules")
    assert cog is not None and type(cog).__module__ == "bot.cogs.schedules"
    return cog


async def ask(server: DiscordServer, user: User, content: str) -> str:
    """``user`` types ``content`` in #general; the bot's reply to that message."""
    sent = await server.user_sends(user, content)
    answer = await server.wait_for_message(
        predicate=lambda m: (m.message_reference or {}).get("message_id") == str(sent.id), timeout=10
    )
    return answer.content


def scheduled_posts(server: DiscordServer) -> list[StoredMessage]:
    """The bot's messages that answer nobody, except help pages: the scheduled quotes."""
    return [m for m in server.bot_messages() if not m.message_reference and not m.content.startswith("```")]


async def stored_quote(bot: QuoteBot, message_id: int) -> Quote:
    """The stored quote of a posted message (its id is recorded just after the send returns)."""
    assert bot.store is not None
    for _ in range(250):
        quote = await bot.store.quote_by_message(message_id)
        if quote is not None:
            return quote
        await asyncio.sleep(0.02)
    raise AssertionError(f"no stored quote for message {message_id}")


async def wait_paused(bot: QuoteBot, schedule_id: int) -> Schedule:
    cog = cog_of(bot)
    for _ in range(250):
        (schedule,) = [s for s in await cog.schedules.for_guild(cog_guild(bot)) if s.id == schedule_id]
        if schedule.paused:
            return schedule
        await asyncio.sleep(0.02)
    raise AssertionError(f"schedule {schedule_id} was not paused")


def cog_guild(bot: QuoteBot) -> int:
    (guild,) = bot.guilds
    return guild.id


async def test_a_due_schedule_posts_once_and_a_restarted_bot_does_not_repeat_it(
    discord_server: DiscordServer, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    server = discord_server
    settings = settings_for(server, tiny_checkpoint, tmp_path / "bot.db")
    start = datetime.now(UTC)
    async with running(settings) as bot:
        clock = cog_of(bot).scheduler.clock = Clock(start)
        answer = await ask(server, server.admin, f"!schedule {server.channel.mention} every 10m Hey,")
        assert answer.startswith("Scheduled #1") and "every 10m" in answer and "Hey," in answer
        assert f"{start + timedelta(minutes=10):%Y-%m-%d %H:%M} UTC" in answer
        assert scheduled_posts(server) == []
        clock.now = start + timedelta(minutes=10)
        post = await server.wait_for_message(server.channel, lambda m: not m.message_reference, timeout=10)
        assert post.content.startswith("Hey,")
        assert post.allowed_mentions is not None and post.allowed_mentions.get("parse") == []
        quote = await stored_quote(bot, post.id)  # a stored quote like any other: it can collect votes
        assert (quote.requester_id, quote.seed, quote.channel_id) == (None, "Hey,", server.channel.id)
        assert post.button("Another")["custom_id"] == f"quote:another:{quote.id}"  # buttons, as on any quote
        await asyncio.sleep(10 * TICK)  # more ticks at the same moment post nothing more
        assert len(scheduled_posts(server)) == 1

    # The bot restarts on the same database a minute later: the posted run is not repeated...
    async with running(settings) as bot:
        clock = cog_of(bot).scheduler.clock = Clock(start + timedelta(minutes=11))
        await asyncio.sleep(10 * TICK)
        assert len(scheduled_posts(server)) == 1
        # ...and the next one is not skipped.
        clock.now = start + timedelta(minutes=20)
        second = await server.wait_for_message(server.channel, lambda m: not m.message_reference, timeout=10)
        assert second.content.startswith("Hey,") and second.id != post.id
        await stored_quote(bot, second.id)
        await asyncio.sleep(10 * TICK)
        assert len(scheduled_posts(server)) == 2


async def test_commands_need_manage_server_and_list_and_remove(
    discord_server: DiscordServer, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    server = discord_server
    general = server.channel.mention
    settings = settings_for(server, tiny_checkpoint, tmp_path / "bot.db", MAX_SCHEDULES_PER_SERVER="2")
    async with running(settings):
        assert "Manage Server" in await ask(server, server.member, f"!schedule {general} every 6h")
        assert "Manage Server" in await ask(server, server.member, "!schedules")
        assert "shortest interval is 10m" in await ask(server, server.admin, f"!schedule {general} every 5m")
        assert "not a time of day" in await ask(server, server.admin, f"!schedule {general} daily 25:00")
        zone = await ask(server, server.admin, f"!schedule {general} daily 09:00 Mars/Olympus")
        assert "unknown time zone `Mars/Olympus`" in zone
        assert "snowman" in await ask(server, server.admin, f"!schedule {general} every 6h Hi \u2603")
        assert "No scheduled posts" in await ask(server, server.admin, "!schedules")
        await server.user_sends(server.member, "!help schedule")  # help answers without a reply reference
        help_text = (await server.wait_for_message(server.channel, lambda m: "```" in m.content)).content
        assert "every 6h [seed]" in help_text and "daily 09:00 [Area/City] [seed]" in help_text

        first = await ask(server, server.admin, f"!schedule {general} every 6h Hey,")
        second = await ask(
            server, server.admin, f"!schedule {general} daily 09:00 Europe/Paris Good morning,"
        )
        assert first.startswith("Scheduled #1") and second.startswith("Scheduled #2")
        assert "Europe/Paris)" in second  # the first post in UTC and in the schedule's own zone
        limit = await ask(server, server.admin, f"!schedule {general} every 1d")
        assert "already has 2 schedules" in limit and "!unschedule ID" in limit

        listing = await ask(server, server.admin, "!schedules")
        assert "(2 of 2)" in listing
        assert f'#1 · {general} · every 6h · seed "Hey,"' in listing
        assert "#2" in listing and "daily 09:00 Europe/Paris" in listing and "Good morning," in listing
        assert listing.count("next ") == 2 and "UTC" in listing

        assert "Manage Server" in await ask(server, server.member, "!unschedule 1")
        assert (await ask(server, server.admin, "!unschedule 1")).startswith("Removed #1")
        assert "no schedule with id 1" in await ask(server, server.admin, "!unschedule 1")
        listing = await ask(server, server.admin, "!schedules")
        assert "#1 ·" not in listing and "#2 ·" in listing
        assert scheduled_posts(server) == []


async def test_a_deleted_channel_or_lost_permission_pauses_and_shows_why(
    discord_server: DiscordServer, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    server = discord_server
    doomed = server.world.add_text_channel(server.guild, "quotes")  # known to the bot from the start
    settings = settings_for(server, tiny_checkpoint, tmp_path / "bot.db")
    start = datetime.now(UTC)
    async with running(settings) as bot:
        clock = cog_of(bot).scheduler.clock = Clock(start)
        await ask(server, server.admin, f"!schedule {doomed.mention} every 10m")
        await ask(server, server.admin, f"!schedule {server.channel.mention} every 10m")
        await server.delete_channel(doomed)
        roles = [server.world.bot_role, server.guild.everyone_role]
        allowed = [role.permissions for role in roles]
        for role in roles:
            await server.set_role_permissions(role, role.permissions & ~Perm.SEND_MESSAGES)
        clock.now = start + timedelta(minutes=10)
        gone, closed = await wait_paused(bot, 1), await wait_paused(bot, 2)
        assert "no longer exists" in (gone.paused_reason or "")
        assert "permission to send messages" in (closed.paused_reason or "")
        for role, permissions in zip(roles, allowed, strict=True):
            await server.set_role_permissions(role, permissions)

        listing = await ask(server, server.admin, "!schedules")
        assert "**paused**: the channel no longer exists" in listing and "`!resume 1`" in listing
        assert "**paused**: I don't have permission to send messages" in listing
        assert "!unschedule 1" in await ask(server, server.admin, "!resume 1")
        resumed = await ask(server, server.admin, "!resume 2")
        assert resumed.startswith("Resumed #2")
        assert scheduled_posts(server) == []
        clock.now = start + timedelta(minutes=20)
        post = await server.wait_for_message(server.channel, lambda m: not m.message_reference, timeout=10)
        await stored_quote(bot, post.id)


async def test_a_manager_cannot_schedule_into_a_channel_they_cannot_post_in(
    discord_server: DiscordServer, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    server = discord_server
    moderators, bot_role = server.world.moderators, server.world.bot_role
    hidden = server.world.add_text_channel(  # the admins (Manage Server) cannot even see it
        server.guild, "owners", [Overwrite(server.guild.id, deny=Perm.VIEW_CHANNEL),
                                 Overwrite(bot_role.id, allow=Perm.VIEW_CHANNEL)]
    )  # fmt: skip
    read_only = server.world.add_text_channel(  # they can read it, not write in it; the bot can
        server.guild, "announcements", [Overwrite(server.guild.id, deny=Perm.SEND_MESSAGES),
                                        Overwrite(bot_role.id, allow=Perm.SEND_MESSAGES)]
    )  # fmt: skip
    mod_only = server.world.add_text_channel(
        server.guild, "mods", [Overwrite(server.guild.id, deny=Perm.VIEW_CHANNEL),
                               Overwrite(moderators.id, allow=Perm.VIEW_CHANNEL),
                               Overwrite(bot_role.id, allow=Perm.VIEW_CHANNEL)]
    )  # fmt: skip
    settings = settings_for(server, tiny_checkpoint, tmp_path / "bot.db")
    async with running(settings) as bot:
        for channel in (hidden, read_only):
            answer = await ask(server, server.admin, f"!schedule {channel.mention} every 6h")
            assert "you can't send messages in" in answer and "yourself" in answer
        assert "Scheduled #1" in await ask(server, server.admin, f"!schedule {mod_only.mention} every 6h")
        # The owner, who can post everywhere, may schedule into the hidden channel.
        assert "Scheduled #2" in await ask(server, server.world.owner, f"!schedule {hidden.mention} every 6h")
        assert [s.channel_id for s in await cog_of(bot).schedules.for_guild(server.guild.id)] == [
            mod_only.id,
            hidden.id,
        ]
        # Resuming is posting too: the admin cannot resume the owner's (paused) schedule into the hidden
        # channel.
        await cog_of(bot).schedules.pause(2, "a test paused it")
        assert "yourself" in await ask(server, server.admin, "!resume 2")
        # Nor do they see what it posts: the listing names only schedules of channels they can read.
        listing = await ask(server, server.admin, "!schedules")
        assert "#1 ·" in listing and "#2 ·" not in listing and hidden.mention not in listing
        assert "(and 1 in channels you cannot read)" in listing
        assert "#2 ·" in await ask(server, server.world.owner, "!schedules")
