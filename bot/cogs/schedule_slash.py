"""``/schedule add|list|remove|resume``: scheduled posts as slash commands with typed options.

    /schedule add rhythm: every  interval: 6h  channel: #general  seed: Hey,
    /schedule add rhythm: daily  time: 09:00  timezone: Europe/Paris (autocompleted)  channel: #general

Intents: none beyond the defaults. The prefix forms (``!schedule``, ``!schedules``, ``!unschedule``,
``!resume``) keep their own names and text syntax, so this is an app command group of its own rather
than a hybrid one; both call the same methods of the ``Schedules`` cog (``bot/cogs/schedules.py``). The
group is hidden from members without Manage Server (``default_permissions``), guild only, and every
subcommand runs the ``manager()`` rule at run time too. Answers are private.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import interaction_is_manager
from bot.errors import QuotebotError
from bot.schedules.rhythm import ScheduleError, parse_schedule

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin
    from bot.cogs.schedules import Schedules

MAX_CHOICES = 25  # Discord shows at most 25 autocomplete suggestions


@functools.cache
def zone_names() -> tuple[str, ...]:
    """The IANA time zone names zoneinfo knows (``Area/City``, plus UTC), sorted."""
    names = {n for n in zoneinfo.available_timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/"))}
    return ("UTC", *sorted(names))


def matching_zones(typed: str) -> list[str]:
    """Up to 25 zone names for what was typed: names starting with it first, then names containing it."""
    needle = typed.strip().lower().replace(" ", "_")
    starts = [
        n for n in zone_names() if n.lower().startswith(needle) or n.lower().split("/")[-1].startswith(needle)
    ]
    contains = [n for n in zone_names() if needle in n.lower() and n not in starts]
    return (starts + contains)[:MAX_CHOICES]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ScheduleGroup(app_commands.Group, name="schedule", description="Scheduled quote posts (Manage Server)"):
    """Scheduled posts: add, list, remove, resume."""

    def __init__(self, bot: commands.Bot):
        super().__init__()
        self.bot = bot

    @property
    def schedules(self) -> Schedules:
        cog = self.bot.get_cog("Schedules")
        if cog is None:
            raise QuotebotError("scheduled posts are switched off right now.")
        return cog  # type: ignore[return-value]

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await interaction_is_manager(interaction)

    @app_commands.command(name="add", description="Post a fresh quote to a channel on a schedule")
    @app_commands.describe(
        rhythm="every: at a fixed interval; daily: at a time of day",
        channel="Where to post (a text channel we can both post in)",
        interval="For every: a number and m, h or d, like 6h (10m at least)",
        time="For daily: 24-hour HH:MM, like 09:00",
        timezone="For daily: an IANA zone like Europe/Paris (UTC if none)",
        seed="How every quote begins (optional)",
    )
    @app_commands.choices(
        rhythm=[
            app_commands.Choice(name="every", value="every"),
            app_commands.Choice(name="daily", value="daily"),
        ]
    )
    async def add(
        self,
        interaction: discord.Interaction,
        rhythm: app_commands.Choice[str],
        channel: discord.TextChannel,
        interval: str | None = None,
        time: str | None = None,
        timezone: str | None = None,
        seed: str = "",
    ) -> None:
        assert interaction.guild is not None
        if rhythm.value == "every":
            if not interval:
                raise ScheduleSlashError("`every` needs an interval, like `6h`.")
            rule = f"every {interval}"
        else:
            if not time:
                raise ScheduleSlashError("`daily` needs a time, like `09:00`.")
            rule = f"daily {time} {timezone or 'UTC'}"
            if timezone and "/" not in timezone and timezone.upper() != "UTC":
                raise ScheduleSlashError(
                    f"unknown time zone `{timezone}`: use an IANA name such as `Europe/Paris`."
                )
        if len(rule.split()) != (2 if rhythm.value == "every" else 3):
            raise ScheduleSlashError("the interval, time and time zone are single words, like `6h`, `09:00`.")
        try:
            parsed, _ = parse_schedule(rule, self.schedules.scheduler.now())
        except ScheduleError as exc:
            raise ScheduleSlashError(f"that schedule won't work: {exc}.") from None
        text = await self.schedules.add(interaction.guild, interaction.user, channel, parsed, seed.strip())
        await interaction.response.send_message(text, ephemeral=True)

    @add.autocomplete("timezone")
    async def timezone_choices(
        self, _interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in matching_zones(typed)]

    @app_commands.command(name="list", description="This server's scheduled posts")
    async def list_(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        pages = await self.schedules.listing(interaction.guild, interaction.user)
        await interaction.response.send_message(pages[0], ephemeral=True)
        for page in pages[1:]:
            await interaction.followup.send(page, ephemeral=True)

    @app_commands.command(name="remove", description="Remove a scheduled post")
    @app_commands.describe(schedule_id="The schedule's number, from /schedule list")
    async def remove(self, interaction: discord.Interaction, schedule_id: app_commands.Range[int, 1]) -> None:
        assert interaction.guild is not None
        text = await self.schedules.remove(interaction.guild.id, schedule_id)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="resume", description="Restart a paused scheduled post")
    @app_commands.describe(schedule_id="The schedule's number, from /schedule list")
    async def resume(self, interaction: discord.Interaction, schedule_id: app_commands.Range[int, 1]) -> None:
        assert interaction.guild is not None
        text = await self.schedules.resume_schedule(interaction.guild, interaction.user, schedule_id)
        await interaction.response.send_message(text, ephemeral=True)


class ScheduleSlashError(QuotebotError):
    """A ``/schedule`` request that cannot be carried out; the text says why."""


class ScheduleSlash(commands.Cog):
    """The /schedule group (the group is the cog's only app command)."""

    def __init__(self, bot: commands.Bot):
        self.bot = bot
        self.group = ScheduleGroup(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.group.name)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.schedule_slash")``."""
    await bot.add_cog(ScheduleSlash(bot))  # type: ignore[arg-type]
