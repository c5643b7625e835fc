"""The quote store: every posted quote, its votes, admin-added source quotes and per-guild settings.

One SQLite file through aiosqlite. The connection, transactions and lock retries are ``bot/storage/db.py``;
the schema
is ``bot/storage/migrations.py``; errors and records ``bot/storage/records.py``; training data
``bot/storage/training_data.py``.
Every write is one transaction; StoreBusyError means another process kept the file locked and nothing changed.

    store = await Store.open("data/quotebot.db")
    quote_id = await store.add_quote(guild_id=1, channel_id=2, requester_id=3, seed="Hey,",
                                     text="Hey, the coffee machine...", settings={"temperature": 0.8},
                                     model_version="default")
    await store.set_quote_message(quote_id, channel_id=2, message_id=4)
    await store.add_vote(quote_id, user_id=5)          # True; the same vote again: False
    await store.close()
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiosqlite

from bot.storage.db import Database, fetch_one, rowcount
from bot.storage.records import (
    DEFAULT_EMOJI,
    MAX_TEXT_CHARS,
    ForgetResult,
    Quote,
    StoreBusyError,
    StoreError,
    StoreInputError,
    UnknownQuoteError,
    check_count,
    check_id,
    check_no_nul,
    check_optional_id,
    check_text,
    normalise_emoji,
)
from bot.storage.training_data import (
    FAVOURED_SQL,
    SOURCE_SQL,
    VOTE_BY_OTHERS,
    TrainingQuote,
    export_jsonl,
    training_params,
)
from bot.storage.training_data import training_quotes_from_rows as _training_rows

__all__ = [
    "DEFAULT_EMOJI",
    "MAX_TEXT_CHARS",
    "ForgetResult",
    "Quote",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoreInputError",
    "TrainingQuote",
    "UnknownQuoteError",
    "export_jsonl",
]

_QUOTE_COLUMNS = "q.id, q.guild_id, q.channel_id, q.message_id, q.requester_id, q.seed, q.text, q.settings, "
_QUOTE_COLUMNS += "q.model_version, q.created_at"
# A vote counts only when it is not the requester's own (VOTE_BY_OTHERS, shared with the training data).
_QUOTE_SQL = f"""SELECT {_QUOTE_COLUMNS}, (SELECT COUNT(*) FROM votes v WHERE v.quote_id = q.id
                 AND {VOTE_BY_OTHERS}) FROM quotes q"""
_TOP_SQL = f"""SELECT {_QUOTE_COLUMNS}, COUNT(*) AS n_votes FROM quotes q
               JOIN votes v ON v.quote_id = q.id AND {VOTE_BY_OTHERS}
               WHERE q.guild_id = ? GROUP BY q.id ORDER BY n_votes DESC, q.id LIMIT ?"""


def _quote(row: Any) -> Quote:
    *head, settings, version, created, votes = row
    return Quote(*head, json.loads(settings), version, datetime.fromisoformat(created), int(votes))


async def _require_quote(db: aiosqlite.Connection, quote_id: int) -> None:
    if await fetch_one(db, "SELECT 1 FROM quotes WHERE id = ?", (quote_id,)) is None:
        raise UnknownQuoteError(f"there is no stored quote with id {quote_id}")


# How long the store remembers that a user asked to be forgotten, for their requests still in flight
# (a quote takes seconds; an hour leaves a wide margin and keeps the memory small).
FORGOTTEN_FOR_S = 3600.0


class Store(Database):
    """An open quote store (``await Store.open(path)``). Safe to share between tasks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # user id -> time.monotonic() of their last forget_user in this process. A quote they asked for
        # before that moment and that arrives after it is not stored (see add_quote).
        self._forgotten: dict[int, float] = {}

    def forgotten_since(self, user_id: int, asked_at: float) -> bool:
        """Whether ``user_id`` asked to be forgotten at or after ``asked_at`` (``time.monotonic()``)."""
        return self._forgotten.get(user_id, -float("inf")) >= asked_at

    # -- quotes ---------------------------------------------------------------------------------------------

    async def add_quote(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        requester_id: int | None,
        seed: str,
        text: str,
        settings: Mapping[str, Any],
        model_version: str,
        message_id: int | None = None,
        asked_at: float | None = None,
    ) -> int | None:
        """Store a generated quote; returns its id. The message id usually comes later (set_quote_message).

        ``asked_at`` (``time.monotonic()`` when the request began): if the requester asked to be forgotten
        since, the quote is not stored and None is returned. It was in flight while they were forgotten,
        and forgetting deletes every quote they asked for that nobody favoured, which this one is.
        """
        named = {
            "guild_id": guild_id,
            "channel_id": channel_id,
            "requester_id": requester_id,
            "message_id": message_id,
        }
        ids = tuple(check_optional_id(name, value) for name, value in named.items())
        if not isinstance(seed, str):
            raise StoreInputError(f"the seed must be a text, got {seed!r}")
        check_no_nul("the seed", seed)
        check_text("the quote text", text)
        check_text("the model version", model_version)
        try:
            settings_json = json.dumps(dict(settings), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreInputError(f"the sampling settings must be plain JSON values ({exc})") from exc
        sql = """INSERT INTO quotes (guild_id, channel_id, requester_id, message_id, seed, text, settings,
                 model_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""

        async def op(db: aiosqlite.Connection) -> int | None:
            # Checked inside the write transaction: a forget_user either ran before it (and is seen here)
            # or runs after it (and deletes the quote, which has no vote yet).
            if (
                requester_id is not None
                and asked_at is not None
                and self.forgotten_since(requester_id, asked_at)
            ):
                return None
            if message_id is not None:
                await self._refuse_used_message(db, message_id, quote_id=None)
            async with db.execute(
                sql, (*ids, seed, text, settings_json, model_version, self.now())
            ) as cursor:
                return int(cursor.lastrowid or 0)

        return await self.write(op)

    @staticmethod
    async def _refuse_used_message(db: aiosqlite.Connection, message_id: int, quote_id: int | None) -> None:
        other = await fetch_one(
            db, "SELECT id FROM quotes WHERE message_id = ? AND id IS NOT ?", (message_id, quote_id)
        )
        if other is not None:
            raise StoreInputError(f"message {message_id} is already recorded for quote {other[0]}")

    async def set_quote_message(self, quote_id: int, channel_id: int, message_id: int) -> None:
        """Record where the bot posted quote ``quote_id``, so that reactions on the message become votes."""
        params = (check_id("channel_id", channel_id), check_id("message_id", message_id),
                  check_id("quote_id", quote_id))  # fmt: skip

        async def op(db: aiosqlite.Connection) -> None:
            await self._refuse_used_message(db, message_id, quote_id)
            sql = "UPDATE quotes SET channel_id = ?, message_id = ? WHERE id = ?"
            if await rowcount(db, sql, params) == 0:
                raise UnknownQuoteError(f"there is no stored quote with id {quote_id}")

        await self.write(op)

    async def get_quote(self, quote_id: int) -> Quote | None:
        """The quote with this id, or None."""
        params = (check_id("quote_id", quote_id),)
        row = await self.read(lambda db: fetch_one(db, f"{_QUOTE_SQL} WHERE q.id = ?", params))
        return _quote(row) if row else None

    async def quote_by_message(self, message_id: int) -> Quote | None:
        """The quote the bot posted as message ``message_id``, or None (not one of its quotes)."""
        params = (check_id("message_id", message_id),)
        row = await self.read(lambda db: fetch_one(db, f"{_QUOTE_SQL} WHERE q.message_id = ?", params))
        return _quote(row) if row else None

    async def top_quotes(self, guild_id: int, n: int = 10) -> list[Quote]:
        """The guild's ``n`` (1-100) most voted quotes (one vote at least); most votes first, then oldest."""
        params = (check_id("guild_id", guild_id), check_count("the number of quotes", n, 1, 100))

        async def op(db: aiosqlite.Connection) -> list[Quote]:
            async with db.execute(_TOP_SQL, params) as cursor:
                return [_quote(row) for row in await cursor.fetchall()]

        return await self.read(op)

    # -- votes ----------------------------------------------------------------------------------------------

    async def add_vote(self, quote_id: int, user_id: int) -> bool:
        """Record the user's vote; False if it was already there. UnknownQuoteError for an unknown quote."""
        params = (check_id("quote_id", quote_id), check_id("user_id", user_id))
        # The primary key (quote_id, user_id) decides: a doubled reaction event cannot count twice.
        sql = """INSERT INTO votes (quote_id, user_id, created_at) VALUES (?, ?, ?)
                 ON CONFLICT (quote_id, user_id) DO NOTHING"""

        async def op(db: aiosqlite.Connection) -> bool:
            await _require_quote(db, quote_id)
            return await rowcount(db, sql, (*params, self.now())) == 1

        return await self.write(op)

    async def remove_vote(self, quote_id: int, user_id: int) -> bool:
        """Remove the user's vote; False if there was none (an unknown quote included)."""
        params = (check_id("quote_id", quote_id), check_id("user_id", user_id))
        sql = "DELETE FROM votes WHERE quote_id = ? AND user_id = ?"
        return await self.write(lambda db: rowcount(db, sql, params)) == 1

    async def vote_count(self, quote_id: int) -> int:
        """How many users voted for the quote. UnknownQuoteError for an unknown quote."""
        params = (check_id("quote_id", quote_id),)

        async def op(db: aiosqlite.Connection) -> int:
            await _require_quote(db, quote_id)
            return int((await fetch_one(db, "SELECT COUNT(*) FROM votes WHERE quote_id = ?", params))[0])

        return await self.read(op)

    # -- source quotes and training data --------------------------------------------------------------------

    async def add_source_quote(
        self, guild_id: int, user_id: int, text: str, max_per_guild: int | None = None
    ) -> int:
        """Store an admin-added quote (outer whitespace trimmed) for the guild's training; returns its id.

        With ``max_per_guild``, refused (``StoreInputError``) once the guild has that many; counted in the
        same transaction as the insert, so two at once cannot both pass the cap.
        """
        params = (check_id("guild_id", guild_id), check_id("user_id", user_id))
        text = check_text("the quote", text, MAX_TEXT_CHARS).strip()
        sql = "INSERT INTO source_quotes (guild_id, added_by, text, created_at) VALUES (?, ?, ?, ?)"

        async def op(db: aiosqlite.Connection) -> int:
            if max_per_guild is not None:
                count = "SELECT COUNT(*) FROM source_quotes WHERE guild_id = ?"
                have = (await fetch_one(db, count, (guild_id,)))[0]
                if have >= max_per_guild:
                    raise StoreInputError(f"this server has added {have} quotes, the most a server may add.")
            async with db.execute(sql, (*params, text, self.now())) as cursor:
                return int(cursor.lastrowid or 0)

        return await self.write(op)

    async def favoured_and_source_quotes(
        self, guild_id: int | None = None, min_votes: int = 1
    ) -> list[TrainingQuote]:
        """Quotes with ``min_votes`` votes or more (most first), then admin-added ones; None: every guild."""
        params = training_params(guild_id, min_votes)

        async def op(db: aiosqlite.Connection) -> list[TrainingQuote]:
            async with db.execute(FAVOURED_SQL, params) as cursor:
                favoured = await cursor.fetchall()
            async with db.execute(SOURCE_SQL, params) as cursor:
                source = await cursor.fetchall()
            return _training_rows(favoured, source)

        return await self.read(op)

    # -- per-guild settings ---------------------------------------------------------------------------------

    async def get_favourite_emoji(self, guild_id: int) -> str:
        """The guild's vote emoji: a Unicode emoji (default ⭐) or a custom emoji as ``name:id``."""
        params = (check_id("guild_id", guild_id),)
        sql = "SELECT favourite_emoji FROM guild_settings WHERE guild_id = ?"
        row = await self.read(lambda db: fetch_one(db, sql, params))
        return row[0] if row else DEFAULT_EMOJI

    async def set_favourite_emoji(self, guild_id: int, emoji: str) -> str:
        """Set the vote emoji (⭐, ``<:name:id>``, ``<a:name:id>``, ``name:id``); returns the stored form."""
        params = (check_id("guild_id", guild_id), normalise_emoji(emoji))
        sql = """INSERT INTO guild_settings (guild_id, favourite_emoji, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (guild_id) DO UPDATE SET favourite_emoji = excluded.favourite_emoji,
                 updated_at = excluded.updated_at"""
        await self.write(lambda db: rowcount(db, sql, (*params, self.now())))
        return params[1]

    async def get_adder_role(self, guild_id: int) -> int | None:
        """The id of the guild's quote-adder role (``!setrole adder``), or None when none was chosen."""
        params = (check_id("guild_id", guild_id),)
        sql = "SELECT adder_role_id FROM guild_settings WHERE guild_id = ?"
        row = await self.read(lambda db: fetch_one(db, sql, params))
        return row[0] if row else None

    async def set_adder_role(self, guild_id: int, role_id: int | None) -> None:
        """Choose the guild's quote-adder role by id; None: no role (Manage Server only)."""
        params = (check_id("guild_id", guild_id), check_optional_id("role_id", role_id))
        sql = """INSERT INTO guild_settings (guild_id, adder_role_id, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (guild_id) DO UPDATE SET adder_role_id = excluded.adder_role_id,
                 updated_at = excluded.updated_at"""
        await self.write(lambda db: rowcount(db, sql, (*params, self.now())))

    # -- privacy --------------------------------------------------------------------------------------------

    async def forget_user(self, user_id: int) -> ForgetResult:
        """Delete what the store holds about ``user_id``, in one transaction.

        Their votes and the source quotes they added are deleted. Quotes they asked for that nobody else
        favoured are deleted whole (their text begins with the seed the user typed); quotes that others
        favoured stay, as the community's, with the seed blanked and the requester unlinked, though their
        text still begins with the seed's words. A table added later that holds user ids must be handled
        here; the tests scan every column.
        """
        uid = (check_id("user_id", user_id),)
        # Marked before the transaction, so a quote still being written for them is dropped on arrival.
        now = time.monotonic()
        self._forgotten = {u: t for u, t in self._forgotten.items() if now - t < FORGOTTEN_FOR_S}
        self._forgotten[user_id] = now
        steps = {
            "votes_deleted": "DELETE FROM votes WHERE user_id = ?",
            # After their own votes are gone: a quote with no vote left is theirs alone.
            "quotes_deleted": "DELETE FROM quotes WHERE requester_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM votes WHERE votes.quote_id = quotes.id)",
            "seeds_blanked": "UPDATE quotes SET seed = NULL WHERE requester_id = ? AND seed IS NOT NULL",
            "quotes_unlinked": "UPDATE quotes SET requester_id = NULL WHERE requester_id = ?",
            "source_quotes_deleted": "DELETE FROM source_quotes WHERE added_by = ?",
            "retrains_unlinked": "UPDATE retrain_runs SET requested_by = NULL WHERE requested_by = ?",
            "schedules_unlinked": "UPDATE schedules SET created_by = NULL WHERE created_by = ?",
        }

        async def op(db: aiosqlite.Connection) -> ForgetResult:
            return ForgetResult(**{name: await rowcount(db, sql, uid) for name, sql in steps.items()})

        return await self.write(op)
