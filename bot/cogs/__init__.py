"""Discord cogs: thin adapters from discord.py commands and events to ``bot.quotes.service``."""

from __future__ import annotations

from discord.ext import commands

from bot.quotes.options import fit_message

# The feature cogs, each a discord.py extension (``async def setup(bot)``), loaded in this order;
# checks.py is shared by them, not an extension.
EXTENSIONS = tuple(f"{__name__}.{name}" for name in ("favourites", "models", "quotes", "schedules"))


async def reply(ctx: commands.Context, text: str, *, ephemeral: bool = False) -> None:
    """Answer a command: a reply to the message (still sent if it was deleted meanwhile), or the
    interaction's response. Mentions are already off for the whole bot. Every answer goes through
    ``fit_message``: Discord drops a message over 2,000 characters, and the member would hear nothing."""
    text = fit_message(text)
    if ctx.interaction is None:
        await ctx.send(text, reference=ctx.message.to_reference(fail_if_not_exists=False))
    else:
        await ctx.send(text, ephemeral=ephemeral)
