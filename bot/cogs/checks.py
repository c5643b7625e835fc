"""The one permission check of admin commands: Manage Server in this server, or a bot owner.

    @commands.command()
    @manager()
    async def rollback(self, ctx): ...

Discord's own ``default_permissions`` only hides a slash command from members (a server can change it);
this check runs on every call, prefix and slash alike. Outside a server it refuses with discord.py's
``NoPrivateMessage``, so a DM gets a clear answer instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import QuotebotError


class NeedsManagerError(commands.CheckFailure, app_commands.CheckFailure, QuotebotError):
    """The author lacks Manage Server (a ``QuotebotError``: the error handlers show the text); a check
    failure of both discord.py's command kinds."""

    def __init__(self) -> None:
        super().__init__("only members with the Manage Server permission (or the bot's owners) can do that.")


def is_manager(ctx: commands.Context) -> bool:
    """Whether the author may run admin commands here: Manage Server, or one of the bot's owners."""
    return may_manage(ctx.author, ctx.bot.settings.owner_ids)


def may_manage(user: discord.abc.User, owner_ids: frozenset[int]) -> bool:
    """The rule itself: a bot owner, or a member with Manage Server."""
    if user.id in owner_ids:
        return True
    return isinstance(user, discord.Member) and user.guild_permissions.manage_guild


def reader(ctx: commands.Context) -> Callable[[int], bool] | None:
    """``can_read(channel_id)`` for the author of a command in a server: whether they may read that
    channel (a private channel's quotes are shown only to its readers); None in a direct message."""
    return reader_for(ctx.guild, ctx.author)


def reader_for(guild: discord.Guild | None, member: object) -> Callable[[int], bool] | None:
    """``reader`` for a guild and a member, as an interaction has them; None outside a server."""
    if guild is None or not isinstance(member, discord.Member):
        return None

    def can_read(channel_id: int) -> bool:
        channel = guild.get_channel_or_thread(channel_id)
        return channel is not None and channel.permissions_for(member).read_messages

    return can_read


def manager():
    """A check: in a server, by a member with Manage Server or a bot owner."""

    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if not is_manager(ctx):
            raise NeedsManagerError()
        return True

    return commands.check(predicate)


async def interaction_is_manager(interaction: discord.Interaction) -> bool:
    """``manager()`` for pure app commands (``/schedule``): the same rule and errors, at run time."""
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage("This command cannot be used in private messages.")
    if not may_manage(interaction.user, interaction.client.settings.owner_ids):  # type: ignore[attr-defined]
        raise NeedsManagerError()
    return True
