"""The bot's store on PostgreSQL as a corpus: ``python -m training finetune --db postgresql://...``.

The same favoured-then-source quotes as ``readers.read_sqlite`` (the bot's SQLite store), read in one
read-only snapshot. The URL should carry no password: asyncpg takes it from ``PGPASSWORD`` (the bot's
retrainer passes it so, keeping it out of the command line, the logs and the checkpoint's metadata).

    records = list(read_postgres("postgresql://bot@db/quotes", guild_id=1234, min_votes=1))
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from training.readers import CorpusError

URL_SCHEMES = ("postgresql://", "postgres://")
# As the bot counts them: a requester's own vote is not one, and quotes an admin excluded are left out.
_FAVOURED = """SELECT q.id, q.text FROM quotes q JOIN votes v ON v.quote_id = q.id
                 AND (q.requester_id IS NULL OR v.user_id <> q.requester_id)
               WHERE ($1::bigint IS NULL OR q.guild_id = $1)
                 AND q.id NOT IN (SELECT item_id FROM retrain_exclusions WHERE kind = 'favoured')
               GROUP BY q.id HAVING COUNT(*) >= $2 ORDER BY q.id"""
_SOURCE = """SELECT id, text FROM source_quotes WHERE ($1::bigint IS NULL OR guild_id = $1)
               AND id NOT IN (SELECT item_id FROM retrain_exclusions WHERE kind = 'source') ORDER BY id"""


def is_database_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def shown(url: str) -> str:
    """The URL with any password replaced by ``***``: safe for messages and metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_postgres(url: str, guild_id: int | None = None, min_votes: int = 1) -> Iterator[tuple[int, str]]:
    """``(row id, text)`` of the guild's favoured quotes, then its source quotes (every guild's for None)."""
    try:
        import asyncpg
    except ImportError as exc:  # a dependency of quotebot; only a stripped install lacks it
        raise CorpusError(shown(url), "reading PostgreSQL needs the asyncpg package") from exc

    async def fetch() -> list[tuple[int, str]]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                favoured = await conn.fetch(_FAVOURED, guild_id, max(1, min_votes))
                source = await conn.fetch(_SOURCE, guild_id)
        finally:
            await conn.close()
        return [(int(r[0]), str(r[1] or "")) for r in [*favoured, *source]]

    try:
        rows = asyncio.run(fetch())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CorpusError(shown(url), f"cannot read the store ({type(exc).__name__}: {exc})") from exc
    yield from rows
