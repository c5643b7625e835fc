"""The store's plumbing, whichever database holds it: open, whole transactions, snapshot reads, the clock.

``Database`` is what ``bot.storage.store.Store`` and the other repositories build on. It opens SQLite for a
path (``bot/storage/sqlite_backend.py``, the default) or PostgreSQL for a ``postgresql://`` URL
(``bot/storage/postgres.py``, a pool), and migrates the schema. Repositories write their SQL once, in
SQLite's style with ``?`` placeholders, against the connection an operation is handed:

    await db.execute(sql, params)               # also: async with db.execute(...) as cursor
    cursor.fetchone(), cursor.fetchall(), cursor.rowcount, cursor.lastrowid

The PostgreSQL connection offers the same calls, translating placeholders; rows are plain tuples on both.
SQL that must differ per backend asks ``dialect(db)``. Portable SQL, which both run alike: ``?`` or
``:name`` parameters; ``ON CONFLICT ... DO NOTHING / DO UPDATE SET x = excluded.x`` (not ``INSERT OR ...``);
``CAST(? AS BIGINT) IS NULL`` for a parameter only tested for NULL; times as the ISO text ``Database.now()``
gives (not ``datetime('now')``); JSON parsed in Python (not ``json_extract``); ``lower(x) LIKE lower(?)``
(SQLite's LIKE ignores ASCII case, PostgreSQL's does not). Migrations written in SQLite's DDL are
translated (``INTEGER`` columns become ``BIGINT``); a table rebuild or a ``PRAGMA`` needs its PostgreSQL
branch.

Every ``write`` is one transaction, all or nothing; when another process keeps the database busy past
``busy_timeout`` it fails with StoreBusyError, having written nothing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import aiosqlite

from bot.storage.migrations import dialect
from bot.storage.records import StoreError, StoreInputError
from bot.storage.sqlite_backend import SqliteBackend

T = TypeVar("T")
D = TypeVar("D", bound="Database")
Op = Callable[[aiosqlite.Connection], Awaitable[T]]
URL_SCHEMES = ("postgresql://", "postgres://")
__all__ = ["Database", "dialect", "fetch_one", "is_url", "rowcount", "split_password"]


class Backend(Protocol):
    """What ``Database`` needs of a backend: whole transactions and a close."""

    dialect: str
    path: str  # for messages and logs: a file path, or a URL without its password
    busy_timeout: float

    async def write(self, op: Any) -> Any: ...
    async def claim(self, op: Any) -> Any: ...
    async def read(self, op: Any) -> Any: ...
    async def close(self) -> None: ...


def is_url(target: object) -> bool:
    """True for a PostgreSQL URL (``DATABASE_URL``), False for a SQLite path."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def split_password(url: str) -> tuple[str, str | None]:
    """``(the URL without its password, the password)``: a child process gets the first on its command
    line and the second in ``PGPASSWORD``, so the secret shows in no process list, log or metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


async def rowcount(db: aiosqlite.Connection, sql: str, params: Any = ()) -> int:
    """Run a write statement; how many rows it changed."""
    async with db.execute(sql, params) as cursor:
        return cursor.rowcount


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    async with db.execute(sql, params) as cursor:
        return await cursor.fetchone()


class Database:
    """An open store (SQLite file or PostgreSQL pool). Safe to share between tasks."""

    def __init__(self, backend: Backend, clock: Callable[[], datetime]) -> None:
        self._backend = backend
        self._clock = clock

    @property
    def path(self) -> str:
        """The file, or the URL without its password: what messages and logs may show."""
        return self._backend.path

    @property
    def busy_timeout(self) -> float:
        return self._backend.busy_timeout

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    @classmethod
    async def open(
        cls: type[D],
        target: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> D:
        """Open (creating if needed) the store at ``target`` and migrate it to the latest schema.

        ``target``: a SQLite file path, or a ``postgresql://`` URL. ``busy_timeout``: seconds to keep
        retrying while another process holds a lock (or, on PostgreSQL, a conflicting transaction wins).
        ``clock``: returns the current timezone-aware datetime (tests pass their own).
        """
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or busy_timeout <= 0:
            raise StoreInputError(f"busy_timeout must be a positive number of seconds, got {busy_timeout!r}")
        backend: Backend
        if is_url(target):
            from bot.storage.postgres import PostgresBackend  # asyncpg only when PostgreSQL is asked for

            backend = await PostgresBackend.open(str(target), float(busy_timeout))
        else:
            backend = await SqliteBackend.open(target, float(busy_timeout))
        return cls(backend, clock or (lambda: datetime.now(timezone.utc)))

    async def close(self) -> None:
        """Close once the operations in progress have finished."""
        await self._backend.close()

    async def __aenter__(self: D) -> D:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def now(self) -> str:
        """The clock's time as stored: ISO 8601 in UTC."""
        now = self._clock()
        if now.tzinfo is None:
            raise StoreError("the store's clock must return timezone-aware datetimes")
        return now.astimezone(timezone.utc).isoformat()

    async def write(self, op: Op[T]) -> T:
        """Run ``op(connection)`` as one transaction: all of it is written or none of it."""
        return await self._backend.write(op)

    async def claim(self, op: Op[T]) -> T:
        """Run ``op(connection)`` as one transaction that takes rows for this process with
        ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (add it where ``dialect(db)`` says so); on
        SQLite, an ordinary write (one writer at a time)."""
        return await self._backend.claim(op)

    async def read(self, op: Op[T]) -> T:
        """Run ``op(connection)`` in one read transaction, so all its queries see the same moment."""
        return await self._backend.read(op)
