"""The quote store's vocabulary: its typed errors, the records it returns, and the checks on what it is given.

Kept apart from ``bot/storage/store.py`` (the connection and the queries) so that the training-data reader
and the
tests can use them without opening a database. ``bot.storage.store`` re-exports everything public here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import QuotebotError

DEFAULT_EMOJI = "⭐"
MAX_TEXT_CHARS = 2000  # a Discord message's limit: no added quote can be longer than what was typed
MAX_ID = 2**63 - 1  # SQLite's INTEGER; every Discord snowflake fits


class StoreError(Exception):
    """The store cannot do what was asked. This base class alone (a damaged file, a full disk) is the
    operator's problem, logged as a bug; the subclasses below are QuotebotErrors, shown to users as they are.
    """


class StoreBusyError(StoreError, QuotebotError):
    """Another process kept the database locked for longer than the retry window; nothing was written."""

    def __init__(self, path: str, waited: float) -> None:
        self.path = path
        self.waited = waited
        super().__init__(
            f"the quote database is busy (another program kept it locked for {waited:g} s), so nothing was "
            "saved; try again in a moment."
        )


class StoreInputError(StoreError, QuotebotError, ValueError):
    """An argument is not acceptable (an empty text, a non-integer id, an unusable emoji, ...)."""


class UnknownQuoteError(StoreError, QuotebotError, LookupError):
    """No stored quote has the given id."""


@dataclass(frozen=True)
class Quote:
    """A stored generated quote and its current vote count."""

    id: int
    guild_id: int | None  # None: asked for in a direct message
    channel_id: int | None
    message_id: int | None  # None until the bot records the message it sent
    requester_id: int | None  # None once the requester asked to be forgotten
    seed: str | None  # None once the requester asked to be forgotten
    text: str
    settings: dict[str, Any]  # the sampling settings it was generated with
    model_version: str
    created_at: datetime  # UTC
    votes: int


@dataclass(frozen=True)
class ForgetResult:
    """What ``Store.forget_user`` changed, one count per kind."""

    votes_deleted: int
    quotes_deleted: int
    seeds_blanked: int
    quotes_unlinked: int
    source_quotes_deleted: int
    retrains_unlinked: int = 0  # retrain runs they started keep running; only the link to them goes
    schedules_unlinked: int = 0  # schedules they created keep posting; only the link to them goes

    @property
    def total(self) -> int:
        return (
            self.votes_deleted
            + self.quotes_deleted
            + self.seeds_blanked
            + self.quotes_unlinked
            + self.source_quotes_deleted
            + self.retrains_unlinked
            + self.schedules_unlinked
        )


def check_id(name: str, value: object) -> int:
    """Ids are Discord snowflakes or our row ids: non-negative integers that fit SQLite's INTEGER."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise StoreInputError(f"{name} must be a non-negative integer id, got {value!r}")
    return value


def check_optional_id(name: str, value: object) -> int | None:
    return None if value is None else check_id(name, value)


def check_text(name: str, value: object, limit: int | None = None) -> str:
    """A text with something in it besides whitespace, and at most ``limit`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise StoreInputError(f"{name} must be a non-empty text, got {value!r}")
    if limit is not None and len(value) > limit:
        raise StoreInputError(f"{name} is {len(value)} characters long; the limit is {limit}")
    return check_no_nul(name, value)


def check_no_nul(name: str, value: str) -> str:
    """PostgreSQL's text cannot hold a NUL character; both backends refuse it alike (nobody types one)."""
    if "\x00" in value:
        raise StoreInputError(f"{name} contains a NUL character (\\x00), which cannot be stored")
    return value


def check_count(name: str, value: object, low: int, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high`` (no upper bound when None)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        bounds = f"from {low} to {high}" if high else f"of at least {low}"
        raise StoreInputError(f"{name} must be a whole number {bounds}, got {value!r}")
    return value


_CUSTOM_EMOJI = re.compile(r"<a?:(\w{2,32}):(\d{1,20})>|:?(\w{2,32}):(\d{1,20})")


def normalise_emoji(emoji: object) -> str:
    """The stored form of a vote emoji: a Unicode emoji as given, a custom one as ``name:id``.

    ``<:name:id>``, ``<a:name:id>`` and ``name:id`` are accepted for a custom emoji. discord.py's
    ``PartialEmoji.from_str`` reads the stored form back; compare reactions by id, since names can change.
    """
    text = emoji.strip() if isinstance(emoji, str) else ""
    custom = _CUSTOM_EMOJI.fullmatch(text)
    if custom:
        name, number = custom.group(1) or custom.group(3), custom.group(2) or custom.group(4)
        return f"{name}:{int(number)}"
    if len(text) > 2 and text.startswith(":") and text.endswith(":"):
        raise StoreInputError(f"{text} is an emoji's short name; send the emoji itself (e.g. ⭐)")
    # A Unicode emoji is a short run of symbols, skin-tone modifiers, joiners and variation selectors, with at
    # least one symbol (or a keycap's enclosing mark); letters or spaces mean it is something else.
    if (
        not text
        or len(text) > 16
        or any(c.isspace() or (c.isascii() and c.isalpha()) for c in text)
        or not any(unicodedata.category(c) in ("So", "Me") for c in text)
    ):
        raise StoreInputError(f"{text!r} is not an emoji; give one emoji such as ⭐, or a custom <:name:id>")
    return text
