"""The Discord bot: a ``commands.Bot`` (an ``AutoShardedBot`` when ``SHARD_COUNT`` is set).

Intents: the default ones plus message content, which the prefix commands (``!quote``) need;
enable "Message Content Intent" for the application in the developer portal (Bot page).

    bot = create_bot(settings)
    async with bot:
        await bot.start(settings.token.get())

``setup_hook`` opens the store (``DATABASE_URL``, else ``DB_PATH``), loads the model in the host's
executor, loads the cogs and syncs slash commands only when told to. ``close`` refuses new quotes, waits
for the replies in flight, closes the model host and the store, then disconnects. Mentions are off for
the whole bot, so no seed or quote can ping anyone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.cogs import EXTENSIONS
from bot.cogs import reply as reply_to
from bot.errors import QuotebotError, log_unexpected
from bot.quotes.service import QuoteService
from bot.retrain.retrainer import RetrainConfig, Retrainer
from bot.serving.guild_models import GuildModels
from bot.serving.host import ModelHost
from bot.settings import Settings
from bot.storage.model_versions import ModelVersions, owner_name
from bot.storage.store import Store

CLOSE_TIMEOUT = 30.0  # seconds close() waits for replies in flight
_log = logging.getLogger(__name__)


def make_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: the prefix commands read message text
    return intents


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py's REST and gateway URLs at the configured (Discord or compatible) server."""
    discord.http.Route.BASE = settings.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def unwrap(error: BaseException) -> BaseException:
    """The error a command raised, out of discord.py's wrappers (invoke errors, hybrid errors)."""
    while isinstance(
        error, (commands.CommandInvokeError, commands.HybridCommandError, app_commands.CommandInvokeError)
    ):
        error = error.original
    return error


def friendly_error(error: BaseException, prefix: str = "!") -> str | None:
    """The reply for an expected error, or ``None`` for a bug (to be logged with an id)."""
    error = unwrap(error)
    if isinstance(error, QuotebotError):
        return str(error)
    if isinstance(error, commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} seconds."
    if isinstance(error, commands.UserInputError):
        return f"{error} (see {prefix}help)"
    if isinstance(error, (commands.CheckFailure, app_commands.CheckFailure)):
        return "You can't use that command here."
    if isinstance(error, (commands.DisabledCommand, commands.MaxConcurrencyReached)):
        return str(error)
    return None


class QuoteBotMixin:
    """What both bot classes add to discord.py: the model host, the service, errors and shutdown."""

    def __init__(self, settings: Settings, **options: Any):
        self.settings = settings
        self.host: ModelHost | None = None
        self.store: Store | None = None
        self.service: QuoteService | None = None
        self.retrainer: Retrainer | None = None
        self._shutdown: asyncio.Task[None] | None = None
        # quotebot has no voice features: skip discord.py's warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=make_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            owner_ids=set(settings.owner_ids) or None,
            **options,
        )

    async def login(self, token: str) -> None:
        configure_endpoints(self.settings)
        await super().login(token)  # type: ignore[misc]

    async def setup_hook(self) -> None:
        settings = self.settings
        self.store = await Store.open(settings.store_target)  # migrates the schema to the latest version
        self.host = ModelHost.from_settings(settings)
        await self.host.start()  # the checkpoint loads in the host's executor, off the event loop
        versions = ModelVersions(self.store, settings.models_dir, owner_name(settings.shard_ids))
        guild_models = GuildModels(versions, self.host)  # each server's own promoted model
        self.service = QuoteService.from_settings(settings, self.host, self.store, guild_models=guild_models)
        self.retrainer = Retrainer(RetrainConfig.from_settings(settings), self.store, versions, guild_models)
        for extension in EXTENSIONS:
            await self.load_extension(extension)  # type: ignore[attr-defined]
        if settings.sync_commands:
            synced = await self.tree.sync()  # type: ignore[attr-defined]
            _log.info("synced %d application commands", len(synced))

    async def on_ready(self) -> None:
        # Fires again after every reconnect: log only, never start anything here.
        user = self.user  # type: ignore[attr-defined]
        _log.info("ready as %s in %d guilds", user, len(self.guilds))  # type: ignore[attr-defined]

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        """The one error handler: typed errors become friendly replies, bugs get an id."""
        if isinstance(error, commands.CommandNotFound):
            return  # "!" followed by anything else is ordinary chat
        text = friendly_error(error, self.settings.command_prefix)
        if text is None:
            error_id = log_unexpected(_log, unwrap(error), f"command {ctx.command}")
            text = f"Something went wrong on my side (error id `{error_id}`)."
        try:
            await reply_to(ctx, text, ephemeral=True)
        except discord.HTTPException as exc:
            _log.warning("could not send an error reply in channel %s: %s", ctx.channel.id, exc)

    async def close(self) -> None:
        """Finish replies in flight, close the model host, then disconnect (safe to call twice)."""
        if self._shutdown is None:
            self._shutdown = asyncio.create_task(self._shut_down())
        await asyncio.shield(self._shutdown)

    async def _shut_down(self) -> None:
        if self.service is not None and not await self.service.close(CLOSE_TIMEOUT):
            _log.warning("closing with %d quotes still in flight", self.service.in_flight)
        if self.host is not None:
            await self.host.close()
        if self.store is not None:
            await self.store.close()  # aiosqlite's thread would otherwise keep the process alive
        await super().close()  # type: ignore[misc]


class QuoteBot(QuoteBotMixin, commands.Bot):
    """quotebot on a single gateway connection."""


class ShardedQuoteBot(QuoteBotMixin, commands.AutoShardedBot):
    """quotebot split over ``SHARD_COUNT`` gateway connections (only ``SHARD_IDS`` of them, when set)."""


def create_bot(settings: Settings, **options: Any) -> QuoteBot | ShardedQuoteBot:
    """The bot class the settings ask for; ``options`` go to discord.py (e.g. ``guild_ready_timeout``)."""
    if settings.shard_count is not None:
        if settings.shard_ids is not None:  # this process runs only these shards of the count
            options["shard_ids"] = list(settings.shard_ids)
        return ShardedQuoteBot(settings, shard_count=settings.shard_count, **options)
    return QuoteBot(settings, **options)
