"""Each server's own model: ``!retrain`` (``status``, ``cancel``), ``!model`` and ``!rollback``.

Intents: guilds, and message content for the prefix commands. A thin adapter: permissions are checked and
messages sent and edited here; runs are ``bot.retrain.retrainer``'s, versions
``bot.storage.model_versions``'s, and which
model serves a server ``bot.serving.guild_models``'s (this extension hands that to the quote service, so
quotes
in a server come from its own model). ``!retrain``, ``!retrain cancel`` and ``!rollback`` need the Manage
Server permission, or a bot owner (``OWNER_IDS``). A run's progress edits one status message. Runs that
were still running when the bot stopped are marked interrupted in ``cog_load`` (which discord.py runs in
``setup_hook``) and their status messages say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs import reply
from bot.cogs.checks import manager
from bot.errors import QuotebotError
from bot.quotes.options import fit_message
from bot.retrain.preview import parse_quote_ref
from bot.retrain.progress import RunUpdate
from bot.retrain.retrainer import Retrainer
from bot.retrain.texts import interrupted_text, model_text, queued_text
from bot.serving.guild_models import GuildModels
from bot.storage.exclusions import TrainingExclusions
from bot.storage.model_versions import ModelVersions, RetrainRefusedError, RetrainRun
from training.metrics import plot_path_for

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin

_log = logging.getLogger(__name__)


class Models(commands.Cog):
    """This server's own model: retrain it from favoured and added quotes, see it, roll it back."""

    def __init__(
        self, bot: QuoteBotMixin, versions: ModelVersions, guild_models: GuildModels, retrainer: Retrainer
    ):
        self.bot = bot
        self.versions = versions
        self.guild_models = guild_models
        self.retrainer = retrainer
        self._notes: set[asyncio.Task[None]] = set()

    async def cog_load(self) -> None:
        interrupted = await self.retrainer.start_up()
        if interrupted:
            _log.warning(
                "marked %d retrain run(s) interrupted: the bot stopped while they ran", len(interrupted)
            )
            task = asyncio.create_task(self._say_interrupted(interrupted), name="retrain-interrupted-notes")
            self._notes.add(task)
            task.add_done_callback(self._notes.discard)

    async def cog_unload(self) -> None:
        await self.retrainer.close()  # children stopped; their runs read 'interrupted' at the next start

    async def _say_interrupted(self, runs: list[RetrainRun]) -> None:
        for run in runs:
            if run.channel_id is None or run.status_message_id is None:
                continue
            message = self.bot.get_partial_messageable(run.channel_id).get_partial_message(
                run.status_message_id
            )
            with contextlib.suppress(discord.HTTPException):  # deleted, or no access any more
                await message.edit(content=interrupted_text(run))

    @commands.hybrid_group(
        name="retrain", invoke_without_command=True, fallback="start", description="This server's model"
    )
    @commands.guild_only()
    @manager()
    @app_commands.guild_only()  # Discord sets contexts on the top-level command; its subcommands share them
    @app_commands.default_permissions(manage_guild=True)
    async def retrain(self, ctx: commands.Context) -> None:
        """Teach this server's model from its favoured and added quotes (Manage Server).

        The new model serves this server only, and only if it is not worse than the current one on
        held-out text and does not loop more; otherwise nothing changes. One message shows the progress
        (or the place in the queue, when other servers' retrains are running). `retrain status` shows how
        it goes, `retrain cancel` stops it, `retrain preview` shows what it would learn from,
        `retrain exclude ID` leaves a quote out, `rollback` undoes a retrain.
        """
        assert ctx.guild is not None
        guild_id = ctx.guild.id
        status = await self._status_message(ctx)

        async def show(update: RunUpdate) -> None:
            await status.edit(content=fit_message(update.text))

        owner = ctx.author.id in self.bot.settings.owner_ids
        try:
            started = await self.retrainer.request(
                guild_id, ctx.author.id, ctx.channel.id, show, status_message_id=status.id, owner=owner
            )
        except QuotebotError as exc:
            await status.edit(content=fit_message(f"No retrain: {exc}"))
            return
        if isinstance(started, int):  # every slot is taken: it waits its turn
            await status.edit(content=queued_text(started, len(self.retrainer.queue)))

    async def _status_message(self, ctx: commands.Context) -> discord.Message:
        """The message a run's progress edits. For ``/retrain start`` an ordinary channel message: an
        interaction's own message can only be edited for 15 minutes, and a run may take longer."""
        first = "Checking this server's quotes..."
        if ctx.interaction is None:
            return await ctx.send(first, reference=ctx.message.to_reference(fail_if_not_exists=False))
        await ctx.send("Starting a retrain; the next message shows how it goes.", ephemeral=True)
        return await ctx.channel.send(first)

    @retrain.command(name="status", description="How this server's retrain is going")
    @commands.guild_only()
    async def retrain_status(self, ctx: commands.Context) -> None:
        """How this server's retrain is going, or how the last one ended."""
        assert ctx.guild is not None
        handle = self.retrainer.active(ctx.guild.id)
        position = self.retrainer.position(ctx.guild.id)
        if position is not None:
            text = queued_text(position, len(self.retrainer.queue))
        elif handle is not None:
            text = handle.latest.text if handle.latest else f"Retrain #{handle.run.id} is starting."
        else:
            run = await self.versions.latest_run(ctx.guild.id)
            text = "No retrain has run in this server yet."
            if run is not None:
                text = run.detail or f"Retrain #{run.id}: {run.status}."
        await reply(ctx, fit_message(text))

    @retrain.command(name="cancel", description="Stop this server's retrain")
    @commands.guild_only()
    @manager()
    async def retrain_cancel(self, ctx: commands.Context) -> None:
        """Stop this server's retrain; the current model keeps serving (Manage Server)."""
        assert ctx.guild is not None
        guild_id = ctx.guild.id
        if self.retrainer.withdraw(guild_id):
            await reply(ctx, "This server's retrain left the queue before it started; nothing changes.")
            return
        handle = await self.retrainer.cancel(guild_id, by=ctx.author.id)
        assert handle.task is not None
        await ctx.defer()  # the run may take seconds to stop; only after the refusals above, kept private
        final = await asyncio.wait_for(asyncio.shield(handle.task), 30)
        await reply(ctx, fit_message(final.text))

    @retrain.command(name="preview", description="What the next retrain would learn from")
    @manager()
    async def retrain_preview(self, ctx: commands.Context) -> None:
        """What the next retrain would learn from: the counts, the new characters, a sample with ids."""
        assert ctx.guild is not None
        vocab = self.guild_models.host.vocab(await self.guild_models.model_id(ctx.guild.id))
        await reply(ctx, fit_message(await self.retrainer.preview(ctx.guild.id, vocab)))

    @retrain.command(name="exclude", description="Leave one quote out of this server's retrains")
    @manager()
    @app_commands.describe(quote_id="The quote's id from retrain preview, e.g. a12 or f7")
    async def retrain_exclude(self, ctx: commands.Context, quote_id: str) -> None:
        """Leave one quote out of this server's retrains: its id from `retrain preview` (a12, f7)."""
        await self._exclusion(ctx, quote_id, exclude=True)

    @retrain.command(name="include", description="Put an excluded quote back into retrains")
    @manager()
    @app_commands.describe(quote_id="The quote's id from retrain preview, e.g. a12 or f7")
    async def retrain_include(self, ctx: commands.Context, quote_id: str) -> None:
        """Put a quote left out with `retrain exclude` back into this server's retrains."""
        await self._exclusion(ctx, quote_id, exclude=False)

    async def _exclusion(self, ctx: commands.Context, quote_id: str, *, exclude: bool) -> None:
        assert ctx.guild is not None
        kind, item_id = parse_quote_ref(quote_id)
        exclusions = TrainingExclusions(self.bot.store)
        change = exclusions.exclude if exclude else exclusions.include
        changed = await change(ctx.guild.id, kind, item_id)
        ref = quote_id.strip().lstrip("#").lower()
        if exclude:
            text = f"`{ref}` is left out of retrains." if changed else f"`{ref}` was already left out."
        else:
            text = f"`{ref}` is back in retrains." if changed else f"`{ref}` was not left out."
        await reply(ctx, text)

    @commands.hybrid_command(name="model", description="This server's model: version, origin, scores")
    @commands.guild_only()
    async def model(self, ctx: commands.Context) -> None:
        """This server's model: its version, where it came from, what it learnt from, its scores."""
        assert ctx.guild is not None
        serving = await self.guild_models.serving(ctx.guild.id)
        version = serving.version
        parent = await self.versions.version(version.parent_id) if version and version.parent_id else None
        text = model_text(serving, parent, self.bot.settings.model_path.name)
        curve = plot_path_for(self.versions.file_of(version)) if version else None
        files = [discord.File(curve, filename="loss-curve.png")] if curve and curve.is_file() else []
        reference = ctx.message.to_reference(fail_if_not_exists=False)
        await ctx.send(fit_message(text), files=files, reference=reference)

    @commands.hybrid_command(name="rollback", description="Go back to the model before the last retrain")
    @commands.guild_only()
    @manager()
    @app_commands.default_permissions(manage_guild=True)
    async def rollback(self, ctx: commands.Context) -> None:
        """Go back to the model this server used before its last retrain (Manage Server)."""
        assert ctx.guild is not None
        guild_id = ctx.guild.id
        handle = self.retrainer.active(guild_id)
        if handle is not None:
            raise RetrainRefusedError(f"retrain #{handle.run.id} is running; `retrain cancel` it first.")
        before = await self.versions.current(guild_id)
        await self.versions.rollback(guild_id)
        serving = await self.guild_models.activate(guild_id)
        now = f"version {serving.version.number}" if serving.version else "the bundled model"
        kept = f" (version {before.number} stays on disk)" if before else ""
        await reply(ctx, f"Rolled back: {now} now serves this server{kept}.")


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: the model commands over what ``setup_hook`` built."""
    assert bot.retrainer is not None and bot.service is not None  # built in setup_hook
    guild_models = bot.service.guild_models
    assert guild_models is not None
    await bot.add_cog(Models(bot, guild_models.versions, guild_models, bot.retrainer))  # type: ignore[attr-defined]
