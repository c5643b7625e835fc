"""How the bot answers: friendly texts for expected errors, private answers to interactions, one tree.

    text = friendly_error(error)               # None for a bug: log it with an id instead
    await send_private(interaction, text)      # ephemeral, whatever the interaction answered already
    bot = commands.Bot(..., tree_cls=QuoteTree)  # app commands' and context menus' errors, privately

Hybrid commands' errors go to the bot's ``on_command_error``; pure app commands (``/schedule``,
``/help``) and context menus raise into the tree's ``on_error``, here. Either way an error is answered
privately (ephemeral), never in the public "thinking" message of a deferred response.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import QuotebotError, ShuttingDownError, log_unexpected
from bot.log_context import bind_log_fields

_log = logging.getLogger(__name__)


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
    if isinstance(error, app_commands.TransformerError):
        return f"{error} (see /help)"
    if isinstance(error, (commands.NoPrivateMessage, app_commands.NoPrivateMessage)):
        return "That command works only in a server, not in a direct message."
    if isinstance(error, (commands.CheckFailure, app_commands.CheckFailure)):
        return "You can't use that command here."
    if isinstance(error, (commands.DisabledCommand, commands.MaxConcurrencyReached)):
        return str(error)
    return None


def error_text(error: BaseException, where: str, prefix: str = "!") -> str:
    """``friendly_error``, or for a bug: logged with a fresh id, and a reply naming that id."""
    text = friendly_error(error, prefix)
    if text is None:
        error_id = log_unexpected(_log, unwrap(error), where)
        text = f"Something went wrong on my side (error id `{error_id}`)."
    return text


async def send_private(interaction: discord.Interaction, text: str) -> None:
    """Answer an interaction with a message only its user sees.

    After a public defer, Discord fills the "thinking" message with the first followup, ephemeral flag or
    not; so that message is deleted first, and the followup becomes a new, private message.
    """
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:  # already gone, or already private
            _log.debug("could not delete the deferred response: %s", exc)
    await interaction.followup.send(text, ephemeral=True)


async def answer_error(interaction: discord.Interaction, error: BaseException, where: str) -> None:
    """The one way an interaction's error is answered: friendly (or a bug's id), privately."""
    text = error_text(error, where)
    try:
        await send_private(interaction, text)
    except discord.HTTPException as exc:  # e.g. the interaction expired
        _log.warning("could not answer interaction %s with an error: %s", interaction.id, exc)


class ClosingError(commands.CheckFailure, app_commands.CheckFailure, ShuttingDownError):
    """The bot is closing: a command or an app command that arrives now is refused (privately for an
    interaction), before it touches the store; a check failure of both discord.py's command kinds."""

    def __init__(self) -> None:
        super().__init__(ShuttingDownError.OTHER)


class QuoteTree(app_commands.CommandTree):
    """The bot's command tree: every app command's guild and name are on its log lines (JSON logs),
    errors of app commands and context menus are answered privately, and while the bot closes a new one
    is refused and one in flight is waited for (the bot's ``in_flight``, ``bot/quotes/in_flight.py``)."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        command = interaction.command.qualified_name if interaction.command else None
        bind_log_fields(guild_id=interaction.guild_id, command=command)
        work = getattr(self.client, "in_flight", None)
        if work is not None and work.refuses():
            if interaction.type is discord.InteractionType.autocomplete:
                return False  # a half-typed option gets no suggestions; there is nothing to answer
            raise ClosingError()  # answered privately by on_error
        return True

    async def _call(self, interaction: discord.Interaction) -> None:
        # discord.py's one way into every app command, context menu and autocomplete (a private method:
        # there is no public hook around the whole of one); counted in flight, so the bot's close waits
        # for it before it closes the store. Refused work is not counted: interaction_check answers it.
        work = getattr(self.client, "in_flight", None)
        if work is None or work.refuses():
            await super()._call(interaction)
            return
        async with work.track():
            await super()._call(interaction)

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        name = interaction.command.qualified_name if interaction.command else "an interaction"
        await answer_error(interaction, error, f"app command {name}")
