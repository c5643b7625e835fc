"""The ``quote`` command: ``!quote Hey, --temp 0.7`` (text options) and ``/quote`` (typed options).

Intents: message content for the ``!`` form (or a mention: ``@QuoteBot quote Hey,``); none for the slash
form. A thin adapter: it hands the ids, the seed and the options to ``QuoteService`` (which checks them,
writes and stores the quote), sends the reply with its buttons, and records the reply's message id on
the stored quote so that votes on it count. The slash form has its options typed and ranged by Discord
(``length`` up to ``MAX_QUOTE_CHARS``) and is checked before it defers, so its errors are private.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.quote_flow import quote_for_interaction
from bot.cogs.quote_view import quote_view
from bot.quotes.options import DEFAULT_TEMPERATURE, MIN_LENGTH, QuoteOptions
from bot.quotes.service import QuoteRequest, QuoteService

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

RNG_MAX = 2**53 - 1  # Discord's integer options stop at 2^53


class Quotes(commands.Cog):
    """Quotes in the character's voice."""

    def __init__(self, service: QuoteService, prefix: str):
        self.service = service
        # The help text names this bot's prefix and limits, so it is filled in per instance.
        self.quote.help = service.quote_help(prefix)
        # Discord's client keeps `length` within this bot's MAX_QUOTE_CHARS (a setting, so set per instance).
        params = self.slash_quote._params  # no public way to change a range
        params["length"] = dataclasses.replace(params["length"], max_value=service.max_quote_chars)

    @commands.command(name="quote")
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
            message = await ctx.send(
                result.reply,
                view=quote_view(result.quote_id),
                # Still sent if the user deleted their command meanwhile. Mentions are off for the bot.
                reference=ctx.message.to_reference(fail_if_not_exists=False),
            )
            await self.service.record_message(result.quote_id, message.channel.id, message.id)

    @app_commands.command(name="quote", description="Write a quote in the character's voice")
    @app_commands.describe(
        seed="How the quote begins; leave it out for a whole new quote",
        temperature=f"0.1 to 2.0, default {DEFAULT_TEMPERATURE}: lower is tamer, higher is wilder",
        length="Most characters in the whole quote, seed included",
        rng="Any whole number, to get the same quote again",
    )
    async def slash_quote(
        self,
        interaction: discord.Interaction,
        seed: str = "",
        temperature: app_commands.Range[float, 0.1, 2.0] = DEFAULT_TEMPERATURE,
        length: app_commands.Range[int, MIN_LENGTH, 2000] | None = None,
        rng: app_commands.Range[int, 0, RNG_MAX] | None = None,
    ) -> None:
        """Write a quote in the character's voice, starting with your words."""
        request = QuoteRequest(
            seed,
            QuoteOptions(temperature=temperature, length=length, rng_seed=rng),
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
        )
        await quote_for_interaction(interaction, self.service, request)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.quotes")``."""
    await bot.add_cog(Quotes(bot.service, bot.settings.command_prefix))  # type: ignore[attr-defined]
