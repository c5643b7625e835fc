"""Favourites on Discord: ⭐ reactions on the bot's quotes are votes, and the commands around them.

Intents: guild (and DM) reactions, in discord.py's defaults; message content for the prefix commands.
The raw reaction events are used, so a reaction on a message posted before a restart (not in the message
cache) still counts. A thin adapter: the rules are ``bot.quotes.favourites.Favourites``; errors go to the
bot's
one error handler.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.cogs import reply
from bot.cogs.checks import is_manager, manager
from bot.quotes.favourites import (
    TOP_DEFAULT,
    AddQuoteLimits,
    Favourites,
    FavouritesError,
    can_add_quotes,
    message_id_from,
)
from bot.storage.store import Store, StoreError

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

_log = logging.getLogger(__name__)


class FavouriteQuotes(commands.Cog, name="Favourites"):
    """Vote for quotes with a reaction (⭐ unless the server chose another emoji), and see the favourites."""

    def __init__(self, bot: commands.Bot, store: Store, limits: AddQuoteLimits | None = None):
        self.bot = bot
        self.favourites = Favourites(store, limits)

    # -- reactions ----------------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # Cheap checks first: most reactions are on other people's messages.
        if self.bot.user is None or payload.message_author_id not in (None, self.bot.user.id):
            return
        await self._reaction(payload, added=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
        try:
            await self.favourites.reaction(
                guild_id=payload.guild_id,
                message_id=payload.message_id,
                user_id=payload.user_id,
                emoji_id=payload.emoji.id,
                emoji_name=payload.emoji.name,
                by_bot=self._is_bot(payload),
                added=added,
            )
        except StoreError as exc:  # e.g. busy: the vote is lost, and the log says so
            _log.warning(
                "reaction by %s on message %s not counted: %s", payload.user_id, payload.message_id, exc
            )

    def _is_bot(self, payload: discord.RawReactionActionEvent) -> bool:
        if payload.member is not None:  # guild additions carry the member
            return payload.member.bot
        user = self.bot.get_user(payload.user_id)
        # A removal carries no member; an uncached user who is a bot never had a vote to remove anyway.
        return payload.user_id == getattr(self.bot.user, "id", None) or (user is not None and user.bot)

    # -- commands -----------------------------------------------------------------------------------------

    @commands.command(name="top")
    @commands.guild_only()
    async def top(self, ctx: commands.Context, n: int = TOP_DEFAULT) -> None:
        """The server's most favoured quotes (default 5, at most 10), with their votes and links."""
        assert ctx.guild is not None
        await reply(ctx, await self.favourites.top(ctx.guild.id, n))

    @commands.command(name="quoteinfo")
    async def quoteinfo(self, ctx: commands.Context, link: str = "") -> None:
        """How a quote was written: its seed, settings, model version and votes.

        Reply to one of my quotes with this command, or give the quote's message link
        (right-click the message, Copy Message Link).
        """
        if link:
            message_id = message_id_from(link)
        elif ctx.message.reference is not None and ctx.message.reference.message_id is not None:
            message_id = ctx.message.reference.message_id
        else:
            raise FavouritesError(
                "reply to one of my quotes with this command, or give the quote's message link."
            )
        guild_id = ctx.guild.id if ctx.guild else None
        await reply(ctx, await self.favourites.info(message_id, guild_id, ctx.channel.id))

    @commands.command(name="addquote")
    @commands.guild_only()
    async def addquote(self, ctx: commands.Context, *, text: str) -> None:
        """Add a quote of the character for this server's next retrain.

        For members with Manage Server, or with a role named "Quote Adder" (create it and give it to
        whom you trust). A server may add a limited number, each member waits a few seconds between two,
        and a quote has a length limit; links and ids are left out of training.
        """
        assert ctx.guild is not None and isinstance(ctx.author, discord.Member)
        allowed = can_add_quotes(is_manager(ctx), (r.name for r in ctx.author.roles))
        await reply(
            ctx, await self.favourites.add_source_quote(ctx.guild.id, ctx.author.id, text, allowed=allowed)
        )

    @commands.command(name="setstar")
    @manager()
    async def setstar(self, ctx: commands.Context, emoji: str) -> None:
        """Choose the reaction that counts as a vote: an emoji such as ⭐ or one of the server's own.

        For members with Manage Server.
        """
        assert ctx.guild is not None
        await reply(ctx, await self.favourites.set_favourite_emoji(ctx.guild.id, emoji))

    @commands.command(name="forgetme")
    async def forgetme(self, ctx: commands.Context) -> None:
        """Delete your data: your votes, the quotes you added, and your seeds on the quotes you asked for.

        The quotes themselves stay as they were posted, no longer linked to you. Works in a direct
        message to me too.
        """
        await reply(ctx, await self.favourites.forget(ctx.author.id))


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.favourites")``."""
    assert bot.store is not None, "the store opens in setup_hook, before the cogs load"
    limits = AddQuoteLimits.from_settings(bot.settings)
    await bot.add_cog(FavouriteQuotes(bot, bot.store, limits))  # type: ignore[arg-type]
