"""Favourites on Discord: ⭐ reactions on the bot's quotes are votes, and the commands around them.

Intents: guild (and DM) reactions, in discord.py's defaults; message content for the prefix commands.
The raw reaction events are used, so a reaction on a message posted before a restart (not in the message
cache) still counts. A thin adapter: the rules are ``bot.quotes.favourites.Favourites``; errors go to the
bot's
one error handler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs import reply
from bot.cogs.checks import is_manager, manager, reader
from bot.cogs.quote_view import quote_view
from bot.errors import ShuttingDownError
from bot.quotes.favourites import (
    TOP_DEFAULT,
    TOP_MAX,
    AddQuoteLimits,
    Favourites,
    FavouritesError,
    VoteChange,
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
        # Discord's client keeps /top's n within 1..TOP_MAX (no public way to range an int per command).
        params = self.top.app_command._params
        params["n"] = dataclasses.replace(params["n"], min_value=1, max_value=TOP_MAX)

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
        # Work in flight for the bot's close: a vote is still counted while it closes, until the store is
        # about to close; one that comes later is logged as not counted (there is no one to answer).
        work = getattr(self.bot, "in_flight", None)
        try:
            async with work.track(vote=True) if work is not None else contextlib.nullcontext():
                await self._count_reaction(payload, added=added)
        except ShuttingDownError:
            _log.warning(
                "reaction by %s on message %s not counted: the bot is shutting down",
                payload.user_id,
                payload.message_id,
            )

    async def _count_reaction(self, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
        try:
            change = await self.favourites.reaction(
                guild_id=payload.guild_id,
                message_id=payload.message_id,
                user_id=payload.user_id,
                emoji_id=payload.emoji.id,
                emoji_name=payload.emoji.name,
                by_bot=self._is_bot(payload),
                added=added,
            )
            if change in (VoteChange.ADDED, VoteChange.REMOVED):
                await self._show_votes(payload.channel_id, payload.message_id)
        except StoreError as exc:  # e.g. busy: the vote is lost, and the log says so
            _log.warning(
                "reaction by %s on message %s not counted: %s", payload.user_id, payload.message_id, exc
            )

    async def _show_votes(self, channel_id: int, message_id: int) -> None:
        """The ⭐ button of a quote shows its votes: a reaction changed them, so the button follows."""
        quote = await self.favourites.store.quote_by_message(message_id)
        if quote is None or quote.id is None:
            return
        message = self.bot.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(view=quote_view(quote.id, quote.votes))
        except discord.HTTPException as exc:  # deleted meanwhile, or no access: the vote still counts
            _log.debug("could not show the votes on message %s: %s", message_id, exc)

    def _is_bot(self, payload: discord.RawReactionActionEvent) -> bool:
        if payload.member is not None:  # guild additions carry the member
            return payload.member.bot
        user = self.bot.get_user(payload.user_id)
        # A removal carries no member; an uncached user who is a bot never had a vote to remove anyway.
        return payload.user_id == getattr(self.bot.user, "id", None) or (user is not None and user.bot)

    # -- commands -----------------------------------------------------------------------------------------

    @commands.hybrid_command(name="top", description="This server's most favoured quotes")
    @commands.guild_only()
    @app_commands.describe(n=f"How many, 1 to {TOP_MAX} (default {TOP_DEFAULT})")
    async def top(self, ctx: commands.Context, n: int = TOP_DEFAULT) -> None:
        """The server's most favoured quotes (default 5, at most 10), with their votes and links.

        Only quotes posted in channels you can read are listed.
        """
        assert ctx.guild is not None
        await reply(ctx, await self.favourites.top(ctx.guild.id, n, reader(ctx)))

    @commands.hybrid_command(name="quoteinfo", description="How one of my quotes was written")
    @app_commands.describe(link="The quote's message link (right-click it, Copy Message Link)")
    async def quoteinfo(self, ctx: commands.Context, link: discord.Message | None = None) -> None:
        """How a quote was written: its seed, settings, model version and votes.

        Reply to one of my quotes with this command, or give the quote's message link
        (right-click the message, Copy Message Link); or use Apps > Quote info on the quote.
        """
        if link is not None:  # found by discord.py's MessageConverter: a link, or channel-message ids
            message_id = link.id
        elif ctx.interaction is None and ctx.message.reference and ctx.message.reference.message_id:
            message_id = ctx.message.reference.message_id
        else:
            raise FavouritesError(
                "reply to one of my quotes with this command, or give the quote's message link "
                "(or use Apps > Quote info on it)."
            )
        guild_id = ctx.guild.id if ctx.guild else None
        await reply(ctx, await self.favourites.info(message_id, guild_id, ctx.channel.id, reader(ctx)))

    @commands.hybrid_command(name="addquote", description="Add a quote of the character for the next retrain")
    @commands.guild_only()
    @app_commands.describe(text="The quote, as the character would say it")
    async def addquote(self, ctx: commands.Context, *, text: str) -> None:
        """Add a quote of the character for this server's next retrain.

        For members with Manage Server, or with the server's quote-adder role (chosen by an admin
        with !setrole adder @Role). A server may add a limited number, each member waits a few seconds
        between two, and a quote has a length limit; links and ids are left out of training.
        """
        assert ctx.guild is not None and isinstance(ctx.author, discord.Member)
        role_ids = [r.id for r in ctx.author.roles]
        allowed = await self.favourites.may_add_quotes(ctx.guild.id, is_manager(ctx), role_ids)
        await reply(
            ctx, await self.favourites.add_source_quote(ctx.guild.id, ctx.author.id, text, allowed=allowed)
        )

    @commands.hybrid_command(name="setstar", description="Choose the reaction that counts as a vote")
    @commands.guild_only()
    @manager()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(emoji="An emoji such as ⭐ or one of the server's own")
    async def setstar(self, ctx: commands.Context, emoji: str) -> None:
        """Choose the reaction that counts as a vote: an emoji such as ⭐ or one of the server's own.

        For members with Manage Server.
        """
        assert ctx.guild is not None
        await reply(ctx, await self.favourites.set_favourite_emoji(ctx.guild.id, emoji))

    @commands.hybrid_command(name="setrole", description="Choose the role whose members may add quotes")
    @commands.guild_only()
    @manager()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(kind="adder: who may add quotes", role="@Role, a role id or name, or none")
    async def setrole(self, ctx: commands.Context, kind: str, *, role: str = "") -> None:
        """Choose the role whose members may add quotes: !setrole adder @Role (or a role id or name).

        !setrole adder none removes it (then only Manage Server). The role is kept by its id, so a
        renamed role keeps the right and a new role with the same name does not get it. Manage Server.
        """
        assert ctx.guild is not None
        if kind.casefold() != "adder":
            raise FavouritesError(
                "I know one role to set: `adder` (who may add quotes), e.g. !setrole adder @Role"
            )
        if not role:
            raise FavouritesError("name the role: !setrole adder @Role, or !setrole adder none")
        if role.casefold() == "none":
            await reply(ctx, await self.favourites.set_adder_role(ctx.guild.id, None))
            return
        chosen = await commands.RoleConverter().convert(ctx, role)
        if chosen.is_default():
            raise FavouritesError("@everyone cannot be the quote-adder role; pick a role you give by hand.")
        await reply(ctx, await self.favourites.set_adder_role(ctx.guild.id, chosen.id, chosen.name))

    @commands.hybrid_command(name="forgetme", description="Delete the data I hold about you")
    async def forgetme(self, ctx: commands.Context) -> None:
        """Delete your data: your votes, the quotes you added, and your seeds on the quotes you asked for.

        The quotes themselves stay as they were posted, no longer linked to you. Works in a direct
        message to me too.
        """
        await reply(ctx, await self.favourites.forget(ctx.author.id), ephemeral=True)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.favourites")``."""
    assert bot.store is not None, "the store opens in setup_hook, before the cogs load"
    limits = AddQuoteLimits.from_settings(bot.settings)
    await bot.add_cog(FavouriteQuotes(bot, bot.store, limits))  # type: ignore[arg-type]
