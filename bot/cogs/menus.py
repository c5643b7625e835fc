"""Message context menus (right-click a message, Apps): "Continue as quote" and "Quote info".

Intents: none beyond the defaults: Discord sends the target message, text included, with the
interaction, so both work without the Message Content intent. discord.py cannot declare context menus
inside a cog class, so the cog builds them and adds them to the tree in ``cog_load``.

- Continue as quote: the message's text (trimmed to ``MAX_SEED_CHARS``) is the seed of a new quote, for
  whoever asked, under their cooldown; the unknown-character policy applies as for ``/quote``.
- Quote info: ``quoteinfo`` on one of the bot's quotes, privately.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import reader_for
from bot.cogs.quote_flow import quote_for_interaction
from bot.cogs.replies import send_private
from bot.quotes.favourites import Favourites
from bot.quotes.service import QuoteRequest, QuoteService

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

CONTINUE, INFO = "Continue as quote", "Quote info"


class Menus(commands.Cog):
    """Context menus on messages."""

    def __init__(self, bot: commands.Bot, service: QuoteService, favourites: Favourites):
        self.bot = bot
        self.service = service
        self._favourites = favourites
        self.menus = [
            app_commands.ContextMenu(name=CONTINUE, callback=self.continue_as_quote),
            app_commands.ContextMenu(name=INFO, callback=self.quote_info),
        ]

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    @property
    def favourites(self) -> Favourites:
        cog = self.bot.get_cog("Favourites")
        return getattr(cog, "favourites", self._favourites)

    async def continue_as_quote(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A new quote that starts with the message's text."""
        seed = message.content.strip()[: self.service.max_seed_chars].rstrip()
        if not seed:
            await send_private(interaction, "That message has no text to continue.")
            return
        request = QuoteRequest(
            seed,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
        )
        await quote_for_interaction(interaction, self.service, request)

    async def quote_info(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """How one of my quotes was written (only you see the answer)."""
        can_read = reader_for(interaction.guild, interaction.user)
        text = await self.favourites.info(message.id, interaction.guild_id, interaction.channel_id, can_read)
        await send_private(interaction, text)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.menus")``."""
    assert bot.store is not None and bot.service is not None  # setup_hook opens both before the cogs
    await bot.add_cog(Menus(bot, bot.service, Favourites(bot.store)))  # type: ignore[arg-type]
