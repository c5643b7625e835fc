"""What the buttons under a quote do: Another, ⭐ and Info (drawn in ``bot/cogs/quote_view.py``).

Intents: none beyond the defaults (a button press is an interaction). The button classes are registered
with ``bot.add_dynamic_items`` when this extension loads, so a press on any quote the bot ever posted is
handled, before or after a restart. A thin adapter: votes and quote details are ``Favourites``' rules,
new quotes ``QuoteService.write``'s (through ``quote_for_interaction``). Errors are answered privately.

- Another: a new quote from the same seed and temperature, for whoever pressed, under their cooldown.
- ⭐: the presser's vote, the same vote as a ⭐ reaction; pressed again, it is taken back. The button
  shows the quote's votes, refreshed on every press.
- Info: the ``quoteinfo`` text, privately.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.cogs.checks import reader_for
from bot.cogs.quote_flow import quote_for_interaction
from bot.cogs.quote_view import QuoteButton, quote_view
from bot.cogs.replies import answer_error
from bot.errors import QuotebotError, ShuttingDownError
from bot.quotes.favourites import Favourites
from bot.quotes.options import TEMPERATURE_RANGE, QuoteOptions
from bot.quotes.service import QuoteRequest, QuoteService

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

_log = logging.getLogger(__name__)


class QuoteButtons(commands.Cog):
    """The buttons under every quote."""

    def __init__(self, bot: commands.Bot, service: QuoteService, favourites: Favourites):
        self.bot = bot
        self.service = service
        self._favourites = favourites

    @property
    def favourites(self) -> Favourites:
        """The favourites cog's rules when it is loaded (its emoji cache is the one ``setstar`` updates)."""
        cog = self.bot.get_cog("Favourites")
        return getattr(cog, "favourites", self._favourites)

    async def pressed(self, action: str, quote_id: int, interaction: discord.Interaction) -> None:
        """A press of ``action`` on the quote ``quote_id``; any error is answered privately.

        Work in flight for the bot's close: while it closes, a ⭐ is still counted until the store is
        about to close (then refused, privately: never lost silently); Another and Info are refused."""
        star = action == "star"
        try:
            async with self.service.track(vote=star, refusal=None if star else ShuttingDownError.OTHER):
                if action == "another":
                    await self.another(quote_id, interaction)
                elif star:
                    await self.star(quote_id, interaction)
                else:
                    await self.info(quote_id, interaction)
        except Exception as exc:
            await answer_error(interaction, exc, f"the {action} button of quote {quote_id}")

    async def another(self, quote_id: int, interaction: discord.Interaction) -> None:
        quote = await self.favourites.quote_here(
            quote_id,
            interaction.guild_id,
            interaction.channel_id,
            reader_for(interaction.guild, interaction.user),
        )
        if quote.seed is None:
            raise QuotebotError("the seed of that quote was deleted with its author's data; try /quote.")
        temperature = quote.settings.get("temperature")
        low, high = TEMPERATURE_RANGE
        options = QuoteOptions()
        if isinstance(temperature, (int, float)) and low <= temperature <= high:
            options = QuoteOptions(temperature=float(temperature))
        request = QuoteRequest(
            quote.seed,
            options,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
        )
        await quote_for_interaction(interaction, self.service, request)

    async def star(self, quote_id: int, interaction: discord.Interaction) -> None:
        _voted, votes = await self.favourites.toggle_vote(
            quote_id,
            interaction.guild_id,
            interaction.channel_id,
            interaction.user.id,
            reader_for(interaction.guild, interaction.user),
        )
        # Edits the message the button is on: the new count shows at once, for everyone.
        await interaction.response.edit_message(view=quote_view(quote_id, votes))

    async def info(self, quote_id: int, interaction: discord.Interaction) -> None:
        text = await self.favourites.info_of(
            quote_id,
            interaction.guild_id,
            interaction.channel_id,
            reader_for(interaction.guild, interaction.user),
        )
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: the cog, and the button templates that make old buttons work."""
    assert bot.store is not None and bot.service is not None  # setup_hook opens both before the cogs
    bot.add_dynamic_items(QuoteButton)  # type: ignore[attr-defined]
    await bot.add_cog(QuoteButtons(bot, bot.service, Favourites(bot.store)))  # type: ignore[arg-type]


async def teardown(bot: QuoteBotMixin) -> None:
    bot.remove_dynamic_items(QuoteButton)  # type: ignore[attr-defined]
