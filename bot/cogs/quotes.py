"""The ``quote`` command, as ``!quote Hey,`` and as ``/quote seed: Hey,``.

Intents: message content (for the prefix form). A thin adapter: it hands the ids and the typed text
to ``QuoteService`` (which stores the quote) and sends the reply, then records the reply's message id on
the stored quote so that reactions on it become votes. Every rule lives in the service, and every error
goes to the bot's one error handler (``QuoteBot.on_command_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.quotes.service import QuoteService

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin


class Quotes(commands.Cog):
    """Quotes in the character's voice."""

    def __init__(self, service: QuoteService, prefix: str):
        self.service = service
        # The help text names this bot's prefix and limits, so it is filled in per instance.
        self.quote.help = service.quote_help(prefix)

    @commands.hybrid_command(name="quote", description="Write a quote in the character's voice")
    @app_commands.describe(seed="How the quote begins, then options if you like: --temp 0.7 --len 150")
    async def quote(self, ctx: commands.Context, *, seed: str = "") -> None:
        """Write a quote in the character's voice, starting with your words."""
        # Counted from the start, so the bot's close() waits until this reply is sent.
        async with self.service.track():
            async with ctx.typing():
                request = self.service.parse(
                    seed,
                    user_id=ctx.author.id,
                    guild_id=ctx.guild.id if ctx.guild else None,
                    channel_id=ctx.channel.id,
                )
                result = await self.service.write(request)
            message = await send_reply(ctx, result.reply)
            await self.service.record_message(result.quote_id, message.channel.id, message.id)


async def send_reply(ctx: commands.Context, text: str) -> discord.Message:
    """Like ``bot.cogs.reply``, but returns the message sent: its id is recorded on the stored quote."""
    if ctx.interaction is None:
        # Still sent if the user deleted their command meanwhile. Mentions are off for the whole bot.
        return await ctx.send(text, reference=ctx.message.to_reference(fail_if_not_exists=False))
    return await ctx.send(text)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.quotes")``."""
    await bot.add_cog(Quotes(bot.service, bot.settings.command_prefix))
