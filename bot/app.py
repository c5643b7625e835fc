"""The Discord bot: a ``commands.Bot`` (an ``AutoShardedBot`` when ``SHARD_COUNT`` is set).

Intents: the default ones, plus message content unless ``MESSAGE_CONTENT_INTENT=false``: the ``!`` prefix
commands read message text (enable "Message Content Intent" in the developer portal, Bot page). Without
it the bot runs on slash commands, buttons, context menus and commands that mention it.

    bot = create_bot(settings)
    async with bot:
        await bot.start(settings.token.get())

``setup_hook`` opens the store (``DATABASE_URL``, else ``DB_PATH``), loads the model in the host's
executor, loads the cogs and syncs slash commands only when told to. ``close`` refuses new work where
it enters (``in_flight``), waits for the work in flight, closes the model host and the store, then
disconnects. Mentions are off for the whole bot, so no seed or quote can ping anyone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.cogs import EXTENSIONS
from bot.cogs import reply as reply_to
from bot.cogs.replies import ClosingError, QuoteTree, error_text, friendly_error, unwrap
from bot.log_context import bind_log_fields
from bot.ops.health import HealthServer
from bot.quotes.in_flight import InFlight
from bot.quotes.service import QuoteService
from bot.retrain.retrainer import RetrainConfig, Retrainer
from bot.serving.guild_models import GuildModels
from bot.serving.host import ModelHost
from bot.settings import Settings
from bot.storage.model_versions import ModelVersions, owner_name
from bot.storage.store import Store

__all__ = ["QuoteBot", "ShardedQuoteBot", "create_bot", "friendly_error", "make_intents", "unwrap"]
_log = logging.getLogger(__name__)


def make_intents(message_content: bool = True) -> discord.Intents:
    """discord.py's default intents, plus the privileged Message Content one when asked for: the ``!``
    prefix commands read message text. Without it, Discord still sends the text of messages that
    mention the bot, so ``@QuoteBot quote Hey,`` works, as do slash commands, buttons and menus."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    return intents


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py's REST and gateway URLs at the configured (Discord or compatible) server."""
    discord.http.Route.BASE = settings.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


async def bind_command_context(ctx: commands.Context) -> None:
    """The guild and command of this request, on every log line written while it runs (JSON logs)."""
    command = ctx.command.qualified_name if ctx.command else None
    bind_log_fields(guild_id=ctx.guild.id if ctx.guild else None, command=command)


class QuoteBotMixin:
    """What both bot classes add to discord.py: the model host, the service, errors and shutdown."""

    def __init__(self, settings: Settings, **options: Any):
        self.settings = settings
        self.host: ModelHost | None = None
        self.store: Store | None = None
        self.service: QuoteService | None = None
        self.retrainer: Retrainer | None = None
        self.health: HealthServer | None = None
        self._shutdown: asyncio.Task[None] | None = None
        # Every command, interaction, vote and schedule tick in flight; close() drains it before the store.
        self.in_flight = InFlight()
        # quotebot has no voice features: skip discord.py's warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=make_intents(settings.message_content_intent),
            allowed_mentions=discord.AllowedMentions.none(),
            owner_ids=set(settings.owner_ids) or None,
            tree_cls=QuoteTree,
            **options,
        )
        self.before_invoke(bind_command_context)  # type: ignore[attr-defined]

    async def login(self, token: str) -> None:
        configure_endpoints(self.settings)
        await super().login(token)  # type: ignore[misc]

    async def setup_hook(self) -> None:
        settings = self.settings
        if settings.health_port is not None:  # first: while the rest starts, /healthz answers 503
            self.health = HealthServer.for_bot(self, settings.health_host, settings.health_port)
            await self.health.start()
        self.store = await Store.open(settings.store_target)  # migrates the schema to the latest version
        self.host = ModelHost.from_settings(settings)
        await self.host.start()  # the checkpoint loads in the host's executor, off the event loop
        versions = ModelVersions(self.store, settings.models_dir, owner_name(settings.shard_ids))
        guild_models = GuildModels(versions, self.host)  # each server's own promoted model
        self.service = QuoteService.from_settings(
            settings, self.host, self.store, guild_models=guild_models, in_flight=self.in_flight
        )
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

    async def invoke(self, ctx: commands.Context) -> None:
        """Run a prefix command as work in flight, so close() waits for it; while closing, refuse it
        with the usual error reply. (Slash and hybrid-as-slash commands enter through ``QuoteTree``.)"""
        if ctx.command is None:  # not a command: discord.py's CommandNotFound, ignored by on_command_error
            await super().invoke(ctx)  # type: ignore[misc]
            return
        if self.in_flight.refuses():
            self.dispatch("command_error", ctx, ClosingError())  # type: ignore[attr-defined]
            return
        async with self.in_flight.track():
            await super().invoke(ctx)  # type: ignore[misc]

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        """The one error handler: typed errors become friendly replies, bugs get an id."""
        if isinstance(error, commands.CommandNotFound):
            return  # "!" followed by anything else is ordinary chat
        await bind_command_context(ctx)  # a check may fail before the before-invoke hook ran
        text = error_text(error, f"command {ctx.command}", self.settings.command_prefix)
        try:
            await reply_to(ctx, text, ephemeral=True)
        except discord.HTTPException as exc:
            _log.warning("could not send an error reply in channel %s: %s", ctx.channel.id, exc)

    async def close(self) -> None:
        """Refuse new work, finish the work in flight, close the model host and the store, then
        disconnect (safe to call twice: a second call waits for the first)."""
        if self._shutdown is None:
            self._shutdown = asyncio.create_task(self._shut_down())
        await asyncio.shield(self._shutdown)

    async def __aexit__(self, *exc_info: object) -> None:
        # discord.py skips close() once the gateway is closed; but start() returns as soon as it is, before
        # the shutdown task has finished, and asyncio.run would then cancel that task half-way.
        await self.close()

    async def _shut_down(self) -> None:
        # The gateway stays open until the end: what still arrives meanwhile is refused by in_flight
        # (answered, for a command or an interaction) before it touches the store. The order and the vote
        # rule: the README's "Stopping, and exit codes".
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_timeout_seconds  # for the work in flight, in all
        if not await self.in_flight.drain(deadline - loop.time()):
            _log.warning("closing with %d requests still in flight", self.in_flight.count)
        if self.retrainer is not None:  # its runs write to the store; they read 'interrupted' next start
            await self.retrainer.close()
        if self.host is not None:  # what is still queued gets what is left, then "shutting down"
            await self.host.close(max(0.0, deadline - loop.time()))
        if self.store is not None:
            await self.store.close()  # aiosqlite's thread would otherwise keep the process alive
        await super().close()  # type: ignore[misc]
        if self.health is not None:
            await self.health.stop()


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
