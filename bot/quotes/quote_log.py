"""Remembering posted quotes: the service's side of the quote store, where a failure never costs a reply.

    log = QuoteLog(store)
    quote_id = await log.remember(guild_id=1, channel_id=2, user_id=3, seed="Hey,", text="Hey, you.",
                                  settings=quote_settings(sampling, 120, 42, "end"), model_version="default")
    await log.record_message(quote_id, channel_id=2, message_id=4)   # after the reply was sent

The policy: the reply matters more than the record. If the store is busy (another process held the lock
for longer than its retry window) or fails in any other way, ``remember`` logs it and returns None; the
quote is sent anyway, it just cannot collect votes. No discord.py objects here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from bot.errors import log_unexpected
from bot.storage.store import Store, StoreError
from model.sampling import SamplingConfig

_log = logging.getLogger(__name__)


def quote_settings(sampling: SamplingConfig, max_chars: int, rng_seed: int, stopped: str) -> dict[str, Any]:
    """The settings a quote was actually written with, as stored: every sampling knob, the length cap,
    the RNG seed (``--rng`` writes the same quote again with the same seed and model) and how it ended."""
    return {**dataclasses.asdict(sampling), "max_chars": max_chars, "rng_seed": rng_seed, "stopped": stopped}


class QuoteLog:
    """Stores quotes and the messages they were posted as, logging (never raising) store failures."""

    def __init__(self, store: Store):
        self.store = store

    async def remember(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        seed: str,
        text: str,
        settings: Mapping[str, Any],
        model_version: str,
        asked_at: float | None = None,
    ) -> int | None:
        """Store a quote; its id, or None when there is nothing to store, storing failed (logged), or the
        requester asked to be forgotten since ``asked_at`` (``time.monotonic()`` when they asked)."""
        if not text.strip():
            return None  # the "nothing to say" reply is not a quote
        try:
            return await self.store.add_quote(
                guild_id=guild_id,
                channel_id=channel_id,
                requester_id=user_id,
                seed=seed,
                text=text,
                settings=settings,
                model_version=model_version,
                asked_at=asked_at,
            )
        except StoreError as exc:
            _log.warning("quote not stored, sent anyway (user %s, guild %s): %s", user_id, guild_id, exc)
        except Exception as exc:  # a bug in storing must not cost the user their quote either
            log_unexpected(_log, exc, "storing a quote")
        return None

    async def record_message(self, quote_id: int | None, channel_id: int, message_id: int) -> bool:
        """Note where a stored quote was posted, so reactions on it become votes; False if not (logged)."""
        if quote_id is None:
            return False
        try:
            await self.store.set_quote_message(quote_id, channel_id, message_id)
        except StoreError as exc:
            _log.warning(
                "quote %s: message %s not recorded, so votes on it will not count: %s",
                quote_id,
                message_id,
                exc,
            )
            return False
        except Exception as exc:
            log_unexpected(_log, exc, f"recording the message of quote {quote_id}")
            return False
        return True
