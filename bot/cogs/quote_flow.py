"""A quote asked for through an interaction (``/quote``, the Another button, "Continue as quote").

    await quote_for_interaction(interaction, service, QuoteRequest("Hey,", options, user_id=..., ...))

Every check runs before the interaction is deferred, so a bad option, seed or a cooldown is answered
privately (ephemeral); only a real quote is public. Discord drops an interaction not answered within 3
seconds, and a check may have to load the server's model first; a check still running after
``CHECK_BUDGET`` seconds therefore defers, and a refusal then replaces the "thinking" message with a
private one. Otherwise the response is deferred after the check (Discord's "thinking" while the model
writes), the checked request is written through ``QuoteService.write`` (the one way to write a quote),
sent with its buttons, and its message id recorded so votes on it count.
"""

from __future__ import annotations

import asyncio

import discord

from bot.cogs.quote_view import quote_view
from bot.cogs.replies import answer_error, send_private
from bot.errors import QuotebotError
from bot.quotes.service import QuoteRequest, QuoteService

CHECK_BUDGET = 2.0  # seconds a check may take before the interaction is deferred (Discord allows 3)


async def quote_for_interaction(
    interaction: discord.Interaction, service: QuoteService, request: QuoteRequest
) -> discord.Message | None:
    """Check, defer, write, send; the quote's message, or None when it was refused (privately)."""
    checking = asyncio.ensure_future(service.check(request))
    done, _ = await asyncio.wait({checking}, timeout=CHECK_BUDGET)
    if not done:  # e.g. the server's model is loading: keep the interaction alive
        await interaction.response.defer(thinking=True)
    try:
        checked = await checking
    except QuotebotError as exc:
        await send_private(interaction, str(exc))
        return None
    try:
        # Counted from the defer, so the bot's close() waits until this reply is sent.
        async with service.track():
            if not interaction.response.is_done():
                await interaction.response.defer(thinking=True)
            result = await service.write(checked)
            message = await interaction.followup.send(
                result.reply, view=quote_view(result.quote_id), wait=True
            )
    except Exception as exc:
        service.release(checked)  # a no-op when write already gave the turn back
        await answer_error(interaction, exc, f"a quote for interaction {interaction.id}")
        return None
    await service.record_message(result.quote_id, message.channel.id, message.id)
    return message
