"""Discord cogs: thin adapters from discord.py commands and events to ``bot.service``."""

from __future__ import annotations

import pkgutil

from discord.ext import commands

# Every module in this package is a discord.py extension (it defines ``async def setup(bot)``), so adding a
# feature's cog is adding its file. Sorted, so the load order is the same on every machine.
EXTENSIONS = tuple(sorted(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))


async def reply(ctx: commands.Context, text: str, *, ephemeral: bool = False) -> None:
    """Answer a command: a reply to the message (still sent if it was deleted meanwhile), or the
    interaction's response. Mentions are already off for the whole bot."""
    if ctx.interaction is None:
        await ctx.send(text, reference=ctx.message.to_reference(fail_if_not_exists=False))
    else:
        await ctx.send(text, ephemeral=ephemeral)
