"""bot/storage/db.py on both backends: whole transactions, tasks that do not mix, errors named with the
store, the stored clock format."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from bot.storage.db import Database, fetch_one, rowcount
from bot.storage.records import StoreError, UnknownQuoteError

INSERT = "INSERT INTO source_quotes (guild_id, added_by, text, created_at) VALUES (1, 2, ?, 'now')"


async def count(database: Database) -> int:
    return (await database.read(lambda db: fetch_one(db, "SELECT COUNT(*) FROM source_quotes")))[0]


async def test_a_write_that_fails_half_way_leaves_nothing(store_target: Path | str) -> None:
    async with await Database.open(store_target) as database:

        async def two_then_fail(db: aiosqlite.Connection) -> None:
            await rowcount(db, INSERT, ("first",))
            await rowcount(db, INSERT, ("second",))
            raise UnknownQuoteError("there is no stored quote with id 3")

        with pytest.raises(UnknownQuoteError, match="id 3"):  # the store's own errors pass through unchanged
            await database.write(two_then_fail)
        assert await count(database) == 0

        async def bad_sql(db: aiosqlite.Connection) -> None:
            await rowcount(db, INSERT, ("first",))
            await rowcount(db, "INSERT INTO no_such_table VALUES (1)", ())

        # Named with the file (or the URL, less any password), and the database's own words.
        with pytest.raises(StoreError, match=r"(quotes\.db|postgres): the database failed .*no_such_table"):
            await database.write(bad_sql)
        assert await count(database) == 0
        assert await database.write(lambda db: rowcount(db, INSERT, ("kept",))) == 1
        assert await count(database) == 1


async def test_tasks_sharing_one_database_do_not_mix_their_transactions(store_target: Path | str) -> None:
    async with await Database.open(store_target) as database:

        async def slow_pair(db: aiosqlite.Connection, text: str) -> None:
            await rowcount(db, INSERT, (text,))
            await asyncio.sleep(0.005)  # another task would run here, on the same connection
            if text.endswith("7"):
                raise UnknownQuoteError("no")
            await rowcount(db, INSERT, (text,))

        results = await asyncio.gather(
            *(database.write(lambda db, i=i: slow_pair(db, f"t{i}")) for i in range(20)),
            return_exceptions=True,
        )
        assert [i for i, r in enumerate(results) if r is not None] == [7, 17]
        assert await count(database) == 2 * 18


async def test_times_are_stored_in_utc(tmp_path: Path) -> None:
    local = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=-5)))
    async with await Database.open(tmp_path / "a.db", clock=lambda: local) as database:
        assert database.now() == "2026-03-29T07:30:00+00:00"
