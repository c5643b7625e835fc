"""Discord cogs: thin adapters from discord.py commands and events to ``bot.quotes.service``."""

from __future__ import annotations

from discord.ext import commands

# The feature cogs, each a discord.py extension (``async def setup(bot)``), loaded in this order;
# checks.py is shared by them, not an extension.
_NAMES = ("favourites", "models", "quotes", "buttons", "menus", "schedules", "schedule_slash", "help")
EXTENSIONS = tuple(f"{__name__}.{name}" for name in _NAMES)


async def reply(ctx: commands.Context, text: str, *, ephemeral: bool = False) -> None:
    """Answer a command: a reply to the message (still sent if it was deleted meanwhile), or the
    interaction's response. Mentions are already off for the whole bot."""
    if ctx.interaction is None:
        await ctx.send(text, reference=ctx.message.to_reference(fail_if_not_exists=False))
    else:
        await ctx.send(text, ephemeral=ephemeral)
