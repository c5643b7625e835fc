"""The SQLite backend: one aiosqlite connection done carefully (WAL, foreign keys, whole transactions,
lock retries). The default store, a file at ``DB_PATH``.

Every write runs in one ``BEGIN IMMEDIATE`` transaction, so it lands whole or not at all; while another
process holds the lock, an operation is retried for ``busy_timeout`` seconds and then fails with
StoreBusyError, having written nothing. Operations get the ``aiosqlite.Connection`` itself: its
``execute`` is the interface the PostgreSQL backend (``bot/storage/postgres.py``) copies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.storage.migrations import MigrationError, is_busy_error, migrate
from bot.storage.records import StoreBusyError, StoreError, StoreInputError

log = logging.getLogger(__name__)
T = TypeVar("T")
Op = Callable[[Any], Awaitable[T]]


class SqliteBackend:
    """An open database file. Safe to share between tasks: one operation at a time on its connection."""

    dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: str, busy_timeout: float) -> None:
        self._db = db
        self.path = path
        self.busy_timeout = busy_timeout
        # One connection runs statements in order, but two tasks' transactions would interleave on it
        # ("cannot start a transaction within a transaction"); the lock keeps each operation whole.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str], busy_timeout: float) -> SqliteBackend:
        """Open (creating if needed) the file at ``path`` and migrate it to the latest schema."""
        where = os.fspath(path)
        if where != ":memory:":
            if Path(where).is_dir():
                raise StoreInputError(f"the database path {where} is a folder; give a file such as quotes.db")
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we write BEGIN and COMMIT ourselves. timeout= sets SQLite's busy handler,
        # which waits inside SQLite for another process's lock; _retry covers what the handler does not.
        db = await aiosqlite.connect(where, isolation_level=None, timeout=busy_timeout)
        self = cls(db, where, float(busy_timeout))
        try:
            async with self._lock:
                await self._retry(self._prepare)
        except BaseException:
            await db.close()
            raise
        return self

    async def _prepare(self, db: aiosqlite.Connection) -> None:
        async with db.execute("PRAGMA journal_mode = WAL") as cursor:
            mode = (await cursor.fetchone())[0]
        if mode != "wal" and self.path != ":memory:":
            log.warning(
                "%s: SQLite refused WAL mode (it is %s); readers will wait for writers", self.path, mode
            )
        await db.execute("PRAGMA foreign_keys = ON")
        try:
            before, after = await migrate(db)
        except MigrationError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        if before != after:
            log.info("%s: schema migrated from version %d to %d", self.path, before, after)

    async def close(self) -> None:
        """Close the connection once the operation in progress (if any) has finished."""
        async with self._lock:
            await self._db.close()

    async def _retry(self, op: Op[T]) -> T:
        """Run ``op``, again while it is refused for a lock, for at most ``busy_timeout`` seconds in all."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.01
        while True:
            try:
                return await op(self._db)
            except sqlite3.DatabaseError as exc:
                if not is_busy_error(exc):
                    raise StoreError(f"{self.path}: the database failed ({exc})") from exc
                left = deadline - time.monotonic()
                if left <= 0:
                    # The path goes to the log for the operator; the message is for whoever asked.
                    log.warning("%s stayed locked for %g s: %s", self.path, self.busy_timeout, exc)
                    raise StoreBusyError(self.path, self.busy_timeout) from exc
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 0.25)

    async def write(self, op: Op[T]) -> T:
        """Run ``op(connection)`` as one transaction: all of it is written or none of it."""

        async def transaction(db: aiosqlite.Connection) -> T:
            # IMMEDIATE takes the write lock first, so a conflict shows (and is retried) here rather than
            # half-way through, and WAL's "snapshot is stale" refusal cannot happen at the first write.
            await db.execute("BEGIN IMMEDIATE")
            try:
                result = await op(db)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # some errors end the transaction inside SQLite already
                    await db.execute("ROLLBACK")
                raise
            return result

        async with self._lock:
            return await self._retry(transaction)

    async def claim(self, op: Op[T]) -> T:
        """A write that takes rows for this process: SQLite's one writer at a time already serialises it."""
        return await self.write(op)

    async def read(self, op: Op[T]) -> T:
        """Run ``op(connection)`` in one read transaction, so all its queries see the same moment."""

        async def snapshot(db: aiosqlite.Connection) -> T:
            await db.execute("BEGIN")
            try:
                return await op(db)
            finally:
                if db.in_transaction:
                    await db.execute("COMMIT")

        async with self._lock:
            return await self._retry(snapshot)
