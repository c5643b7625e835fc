"""Quotes an admin left out of the server's retrains (``!retrain exclude ID``), over the v4 table.

    exclusions = TrainingExclusions(store)
    await exclusions.exclude(guild_id=1, kind="source", item_id=5)     # False if it already was
    await exclusions.include(guild_id=1, kind="source", item_id=5)     # back in
    await exclusions.count(guild_id=1)

``kind`` is ``favoured`` (a stored quote's id) or ``source`` (an added quote's id). Only a quote of the
same server can be excluded; anything else is ``UnknownQuoteError``. The training queries
(``bot/storage/training_data.py``, ``training/readers.py``) leave excluded quotes out.
"""

from __future__ import annotations

import aiosqlite

from bot.storage.db import Database, fetch_one, rowcount
from bot.storage.records import StoreInputError, UnknownQuoteError, check_id

KINDS = {"favoured": "quotes", "source": "source_quotes"}  # kind -> the table its ids are in


class TrainingExclusions:
    """The ``retrain_exclusions`` table of one store."""

    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def _check(guild_id: int, kind: str, item_id: int) -> tuple[int, str, int]:
        if kind not in KINDS:
            raise StoreInputError(f"a training quote is 'favoured' or 'source', not {kind!r}")
        return check_id("guild_id", guild_id), kind, check_id("the quote id", item_id)

    async def exclude(self, guild_id: int, kind: str, item_id: int) -> bool:
        """Leave the quote out of the server's retrains; False if it already was left out."""
        guild_id, kind, item_id = self._check(guild_id, kind, item_id)

        async def op(db: aiosqlite.Connection) -> bool:
            # The table name comes from KINDS, never from the caller.
            owner = await fetch_one(db, f"SELECT guild_id FROM {KINDS[kind]} WHERE id = ?", (item_id,))
            if owner is None or owner[0] != guild_id:
                raise UnknownQuoteError(f"this server has no {kind} quote with that id")
            sql = (
                "INSERT INTO retrain_exclusions (kind, item_id, guild_id, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, item_id) DO NOTHING"
            )
            return await rowcount(db, sql, (kind, item_id, guild_id, self.db.now())) == 1

        return await self.db.write(op)

    async def include(self, guild_id: int, kind: str, item_id: int) -> bool:
        """Put an excluded quote back; False if it was not excluded."""
        guild_id, kind, item_id = self._check(guild_id, kind, item_id)
        sql = "DELETE FROM retrain_exclusions WHERE kind = ? AND item_id = ? AND guild_id = ?"
        return await self.db.write(lambda db: rowcount(db, sql, (kind, item_id, guild_id))) == 1

    async def count(self, guild_id: int) -> int:
        """How many of the server's quotes are left out."""
        sql = "SELECT COUNT(*) FROM retrain_exclusions WHERE guild_id = ?"
        row = await self.db.read(lambda db: fetch_one(db, sql, (check_id("guild_id", guild_id),)))
        return int(row[0]) if row else 0
