"""Discord cogs: thin adapters from discord.py commands, buttons, menus and events to ``bot.quotes``.

Slash-first: every command has a slash form (hybrid commands, or an app command group where the prefix
form has other names), errors of interactions are private, and quotes carry persistent buttons.
May import ``bot.quotes``, ``bot.schedules``, ``bot.retrain``, ``bot.serving``, ``bot.storage``; nothing
imports the cogs but ``bot.app``.
"""

from __future__ import annotations

from discord.ext import commands

from bot.quotes.options import fit_message

# The feature cogs, each a discord.py extension (``async def setup(bot)``), loaded in this order.
# Shared by them, not extensions: checks.py (the admin rule), replies.py (errors, private answers),
# quote_view.py (the buttons' looks) and quote_flow.py (a quote for an interaction).
_NAMES = ("favourites", "models", "quotes", "buttons", "menus", "schedules", "schedule_slash", "help")
EXTENSIONS = tuple(f"{__name__}.{name}" for name in _NAMES)


async def reply(ctx: commands.Context, text: str, *, ephemeral: bool = False) -> None:
    """Answer a command: a reply to the message (still sent if it was deleted meanwhile), or the
    interaction's response. Mentions are already off for the whole bot. Every answer goes through
    ``fit_message``: Discord drops a message over 2,000 characters, and the member would hear nothing."""
    text = fit_message(text)
    if ctx.interaction is None:
        await ctx.send(text, reference=ctx.message.to_reference(fail_if_not_exists=False))
    else:
        await ctx.send(text, ephemeral=ephemeral)
