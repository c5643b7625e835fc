"""Scheduled quote posts: ``!schedule``, ``!schedules``, ``!unschedule``, ``!resume`` (Manage Server).

Intents: guilds, and message content for the prefix commands. A thin adapter: arguments are parsed and
permissions checked here; the rules live in ``bot.schedules.rhythm`` (rhythms), ``bot.schedules.store``
(the table)
and ``bot.schedules.scheduler`` (posting). The loop that posts is a ``tasks.loop`` started in ``cog_load``,
which
discord.py runs inside ``setup_hook``, never in ``on_ready`` (that fires again after every reconnect, and
would start a second loop). It ticks every ``SCHEDULE_CHECK_SECONDS`` and is cancelled in ``cog_unload``,
which the bot's close runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiohttp
import discord
from discord.ext import commands, tasks

from bot.cogs import reply
from bot.cogs.checks import manager, reader_for
from bot.cogs.quote_view import quote_view
from bot.errors import QuotebotError, ShuttingDownError, log_unexpected
from bot.quotes.options import DISCORD_MESSAGE_LIMIT
from bot.schedules.rhythm import Rhythm, ScheduleError, parse_schedule
from bot.schedules.scheduler import (
    ChannelGoneError,
    MissingPermissionError,
    PostError,
    Scheduler,
    ServiceGenerator,
)
from bot.schedules.store import Schedule, ScheduleLimitError, ScheduleStore
from bot.storage.shards import Shards

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

_log = logging.getLogger(__name__)
SEED_SHOWN = 60  # characters of a seed shown in the listing
# Argument descriptions for the help command (module-level: a call in a default would run at import anyway).
CHANNEL_ARG = commands.parameter(description="where to post, e.g. #general")
RULE_ARG = commands.parameter(description="every 6h [seed], or daily 09:00 [Area/City] [seed]")
ID_ARG = commands.parameter(description="the schedule's number, from !schedules")


class ScheduleCommandError(QuotebotError):
    """A schedule command that cannot be carried out; the text says why and what to do."""


def when(schedule: Schedule, instant: datetime) -> str:
    """``2024-05-02 07:00 UTC``, plus the schedule's own zone's wall clock when that is not UTC."""
    text = f"{instant:%Y-%m-%d %H:%M} UTC"
    zone = schedule.rhythm.zone
    if zone != "UTC":
        text += f" ({instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone})"
    return text


def describe(schedule: Schedule) -> str:
    """``#3 · #general · every 6h · seed "Hey,"``."""
    parts = [f"#{schedule.id}", f"<#{schedule.channel_id}>", schedule.rhythm.describe()]
    if schedule.seed:
        seed = schedule.seed if len(schedule.seed) <= SEED_SHOWN else schedule.seed[:SEED_SHOWN] + "…"
        parts.append(f'seed "{discord.utils.escape_markdown(seed)}"')
    return " · ".join(parts)


def pages(lines: Iterable[str], limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Lines joined into as few messages as fit Discord's limit."""
    out: list[str] = []
    for line in lines:
        line = line[:limit]
        if out and len(out[-1]) + 1 + len(line) <= limit:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def check_can_post(guild: discord.Guild, author: discord.abc.User, channel: discord.abc.GuildChannel) -> None:
    """Both the author and the bot must be able to view and send in ``channel``: Manage Server alone
    must not let someone make the bot post where they cannot post themselves (a locked channel)."""
    bots = channel.permissions_for(guild.me)
    if not (bots.view_channel and bots.send_messages):
        raise ScheduleCommandError(f"I can't send messages in {channel.mention}; allow me there first.")
    mine = channel.permissions_for(author) if isinstance(author, discord.Member) else None
    if mine is None or not (mine.view_channel and mine.send_messages):
        raise ScheduleCommandError(
            f"you can't send messages in {channel.mention} yourself, so I won't post there for you."
        )


class Schedules(commands.Cog):
    """Scheduled quote posts: the bot posts a fresh quote to a channel on a rhythm (Manage Server)."""

    def __init__(self, bot: QuoteBotMixin):
        assert bot.store is not None and bot.service is not None  # setup_hook opens both before the cogs
        self.bot = bot
        self.prefix = bot.settings.command_prefix
        self.schedules = ScheduleStore(bot.store, bot.settings.max_schedules_per_server)
        self.generator = ServiceGenerator(bot.service)
        shards = Shards.of_process(bot.settings.shard_ids, bot.settings.shard_count)  # None: all servers
        self.scheduler = Scheduler(self.schedules, self.generator, self.post, shards=shards)  # tests: .clock
        self.tick.change_interval(seconds=bot.settings.schedule_check_seconds)

    async def cog_load(self) -> None:
        self.tick.start()

    async def cog_unload(self) -> None:
        self.tick.cancel()

    # -- the loop -------------------------------------------------------------------------------------------

    @tasks.loop(seconds=30)
    async def tick(self) -> None:
        service = self.bot.service
        assert service is not None
        try:
            async with service.track():  # the bot's close waits for a tick in progress
                await self.scheduler.run_due()
        except ShuttingDownError:
            return
        except Exception as exc:  # the loop must outlive anything one tick meets
            log_unexpected(_log, exc, "the schedule loop")

    @tick.before_loop
    async def before_tick(self) -> None:
        await self.bot.wait_until_ready()  # type: ignore[attr-defined]

    async def post(self, channel_id: int, text: str, quote_id: int | None = None) -> int:
        """Send a scheduled quote with its buttons (through REST, so an uncached channel works); its
        message id."""
        channel = self.bot.get_partial_messageable(channel_id)  # type: ignore[attr-defined]
        try:
            message = await channel.send(
                text, allowed_mentions=discord.AllowedMentions.none(), view=quote_view(quote_id)
            )
        except discord.NotFound as exc:
            raise ChannelGoneError() from exc
        except discord.Forbidden as exc:
            raise MissingPermissionError() from exc
        except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PostError(str(exc) or type(exc).__name__) from exc
        return message.id

    # -- commands -------------------------------------------------------------------------------------------

    @commands.command(name="schedule")
    @manager()
    async def schedule(
        self,
        ctx: commands.Context,
        channel: discord.TextChannel = CHANNEL_ARG,
        *,
        rule: str = RULE_ARG,
    ) -> None:
        """Post a fresh quote to a channel on a schedule.

        !schedule #channel every 6h [seed]                 every 6 hours (m, h or d; 10m at least)
        !schedule #channel daily 09:00 [Area/City] [seed]  every day at 09:00 in that time zone (UTC if none)

        The seed, if any, starts every quote. Examples:
        !schedule #general every 6h Hey,
        !schedule #general daily 09:00 Europe/Paris Good morning,
        """
        assert ctx.guild is not None
        try:
            rhythm, seed = parse_schedule(rule, self.scheduler.now())
        except ScheduleError as exc:
            raise ScheduleCommandError(f"that schedule won't work: {exc}.") from None
        await reply(ctx, await self.add(ctx.guild, ctx.author, channel, rhythm, seed))

    @commands.command(name="schedules")
    @manager()
    async def list_schedules(self, ctx: commands.Context) -> None:
        """List this server's scheduled posts with their next run, and paused ones with the reason."""
        assert ctx.guild is not None
        for page in await self.listing(ctx.guild, ctx.author):
            await reply(ctx, page)

    @commands.command(name="unschedule")
    @manager()
    async def unschedule(self, ctx: commands.Context, schedule_id: int = ID_ARG) -> None:
        """Remove one of this server's scheduled posts: !unschedule ID (the ID from !schedules)."""
        assert ctx.guild is not None
        await reply(ctx, await self.remove(ctx.guild.id, schedule_id))

    @commands.command(name="resume")
    @manager()
    async def resume(self, ctx: commands.Context, schedule_id: int = ID_ARG) -> None:
        """Restart a paused scheduled post once its channel is fixed: !resume ID."""
        assert ctx.guild is not None
        await reply(ctx, await self.resume_schedule(ctx.guild, ctx.author, schedule_id))

    # -- what the commands do (shared by the prefix commands and /schedule) ------------------------------

    async def add(
        self,
        guild: discord.Guild,
        author: discord.abc.User,
        channel: discord.TextChannel,
        rhythm: Rhythm,
        seed: str,
    ) -> str:
        """Add a schedule after checking its seed and that the bot and the author can post there."""
        await self.bot.service.prepare_seed(seed, guild.id)
        check_can_post(guild, author, channel)
        try:
            schedule = await self.schedules.add(
                guild_id=guild.id, channel_id=channel.id, created_by=author.id, rhythm=rhythm,
                seed=seed, now=self.scheduler.now(),
            )  # fmt: skip
        except ScheduleLimitError as exc:
            raise ScheduleCommandError(
                f"{exc} `{self.prefix}schedules` lists them; `{self.prefix}unschedule ID` removes one."
            ) from None
        return f"Scheduled {describe(schedule)}. First post {when(schedule, schedule.next_run_at)}."

    async def listing(self, guild: discord.Guild, author: discord.abc.User) -> list[str]:
        """The guild's schedules the author can read, as pages of at most 2,000 characters."""
        found = await self.schedules.for_guild(guild.id)
        can_read = reader_for(guild, author)
        # A schedule of a channel the author cannot read stays unnamed: its seed is that channel's business
        # (one whose channel was deleted is listed, paused, so that it can be removed).
        unseen = [
            sc for sc in found
            if guild.get_channel(sc.channel_id) is not None and not (can_read and can_read(sc.channel_id))
        ]  # fmt: skip
        found = [sc for sc in found if sc not in unseen]
        if not found and unseen:
            return [f"This server's {len(unseen)} scheduled posts are in channels you cannot read."]
        if not found:
            return [f"No scheduled posts here. Add one: `{self.prefix}schedule #channel every 6h`."]
        lines = [f"Scheduled posts ({len(found)} of {self.schedules.max_per_guild}):"]
        for schedule in found:
            if schedule.paused:
                state = (
                    f"**paused**: {schedule.paused_reason} (fix it, then `{self.prefix}resume {schedule.id}`)"
                )
            else:
                state = f"next {when(schedule, schedule.next_run_at)}"
            lines.append(f"{describe(schedule)} · {state}")
        if unseen:
            lines.append(f"(and {len(unseen)} in channels you cannot read)")
        return pages(lines)

    async def remove(self, guild_id: int, schedule_id: int) -> str:
        removed = await self.schedules.remove(guild_id, schedule_id)
        return f"Removed {describe(removed)}."

    async def resume_schedule(self, guild: discord.Guild, author: discord.abc.User, schedule_id: int) -> str:
        schedule = await self.schedules.get(guild.id, schedule_id)
        channel = guild.get_channel(schedule.channel_id)
        if schedule.paused and channel is None:
            raise ScheduleCommandError(
                f"the channel of schedule {schedule_id} no longer exists; remove it with "
                f"`{self.prefix}unschedule {schedule_id}` and schedule a new one."
            )
        if schedule.paused and channel is not None:  # resuming is posting too
            check_can_post(guild, author, channel)
        resumed = await self.schedules.resume(guild.id, schedule_id, self.scheduler.now())
        return f"Resumed {describe(resumed)}. Next post {when(resumed, resumed.next_run_at)}."


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.schedules")``."""
    await bot.add_cog(Schedules(bot))  # type: ignore[attr-defined]
