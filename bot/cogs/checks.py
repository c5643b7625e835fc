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
from discord.ext import commands

from bot.errors import QuotebotError


class NeedsManagerError(commands.CheckFailure, QuotebotError):
    """The author lacks Manage Server (a ``QuotebotError``: the error handler shows the text)."""

    def __init__(self) -> None:
        super().__init__("only members with the Manage Server permission (or the bot's owners) can do that.")


def is_manager(ctx: commands.Context) -> bool:
    """Whether the author may run admin commands here: Manage Server, or one of the bot's owners."""
    if ctx.author.id in ctx.bot.settings.owner_ids:
        return True
    return isinstance(ctx.author, discord.Member) and ctx.author.guild_permissions.manage_guild


def reader(ctx: commands.Context) -> Callable[[int], bool] | None:
    """``can_read(channel_id)`` for the author of a command in a server: whether they may read that
    channel (a private channel's quotes are shown only to its readers); None in a direct message."""
    guild, member = ctx.guild, ctx.author
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
