"""Favoured and source quotes as training data: the queries, the row type, and the JSON-lines export.

``Store.favoured_and_source_quotes`` (the bot, retraining) and ``export_jsonl`` (used by
``python -m training export``) run the same SQL, so the two never disagree about what counts as favoured.
Quotes an admin excluded (``!retrain exclude``, table ``retrain_exclusions``) are left out of both.

    count = export_jsonl("data/quotebot.db", "favoured.jsonl", guild=1234, min_votes=2)
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bot.storage.migrations import LATEST_VERSION, is_busy_error
from bot.storage.records import StoreBusyError, StoreError, StoreInputError, check_count, check_optional_id

_BUSY_S = 5.0  # how long the export waits for another process's lock

# A vote counts only when it is not the requester's own: nobody makes their own text "favoured" training
# data alone. (The reaction handler ignores a requester's own star too; this rule covers older rows.)
# Written so that SQLite and PostgreSQL read it alike.
VOTE_BY_OTHERS = "(q.requester_id IS NULL OR v.user_id <> q.requester_id)"
EXCLUSIONS_VERSION = 7  # the schema version that added retrain_exclusions (!retrain exclude)
# Named parameters: :guild (NULL = every guild) and :min_votes. {excluded} is empty for a database older
# than EXCLUSIONS_VERSION (read-only exports cannot migrate it), else it leaves out excluded quotes. The
# CAST tells PostgreSQL the type of a parameter that is only tested for NULL; SQLite reads it the same.
_FAVOURED = (
    """
    SELECT q.id, q.text, q.guild_id, COUNT(*) AS n_votes, q.seed, q.model_version, q.created_at
    FROM quotes q JOIN votes v ON v.quote_id = q.id AND """
    + VOTE_BY_OTHERS
    + """
    WHERE (CAST(:guild AS BIGINT) IS NULL OR q.guild_id = :guild){excluded}
    GROUP BY q.id HAVING COUNT(*) >= :min_votes
    ORDER BY n_votes DESC, q.id"""
)
_SOURCE = """
    SELECT id, text, guild_id, created_at FROM source_quotes
    WHERE (CAST(:guild AS BIGINT) IS NULL OR guild_id = :guild){excluded}
    ORDER BY id"""
_NOT_EXCLUDED = " AND {column} NOT IN (SELECT item_id FROM retrain_exclusions WHERE kind = '{kind}')"
FAVOURED_SQL = _FAVOURED.format(excluded=_NOT_EXCLUDED.format(column="q.id", kind="favoured"))
SOURCE_SQL = _SOURCE.format(excluded=_NOT_EXCLUDED.format(column="id", kind="source"))
# Every quote, excluded ones too: for databases before EXCLUSIONS_VERSION, and for !retrain preview.
FAVOURED_ALL_SQL = _FAVOURED.format(excluded="")
SOURCE_ALL_SQL = _SOURCE.format(excluded="")


@dataclass(frozen=True)
class TrainingQuote:
    """One line of training data: a favoured generated quote or an admin-added source quote."""

    kind: Literal["favoured", "source"]
    id: int  # the row id in quotes (favoured) or in source_quotes (source)
    text: str
    guild_id: int | None
    votes: int | None  # None for source quotes
    seed: str | None  # None for source quotes, and once the requester asked to be forgotten
    model_version: str | None  # None for source quotes
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The export's JSON object."""
        return {
            "text": self.text,
            "kind": self.kind,
            "guild": self.guild_id,
            "votes": self.votes,
            "seed": self.seed,
            "model_version": self.model_version,
        }


def training_params(guild_id: int | None, min_votes: int) -> dict[str, int | None]:
    """Check the filters (StoreInputError) and return the queries' parameters."""
    # A floor of one vote: min_votes 0 would call every quote ever posted "favoured".
    return {
        "guild": check_optional_id("guild", guild_id),
        "min_votes": check_count("the minimum number of votes", min_votes, 1),
    }


def training_quotes_from_rows(
    favoured: Iterable[Sequence[Any]], source: Iterable[Sequence[Any]]
) -> list[TrainingQuote]:
    """Rows of FAVOURED_SQL, then rows of SOURCE_SQL, as TrainingQuotes in that order."""
    quotes = [
        TrainingQuote(
            "favoured", qid, text, guild, int(votes), seed, version, datetime.fromisoformat(created)
        )
        for qid, text, guild, votes, seed, version, created in favoured
    ]
    quotes += [
        TrainingQuote("source", sid, text, guild, None, None, None, datetime.fromisoformat(created))
        for sid, text, guild, created in source
    ]
    return quotes


def read_training_quotes(
    db_path: str | os.PathLike[str], guild: int | None = None, min_votes: int = 1
) -> list[TrainingQuote]:
    """The training quotes of a store file (or a ``postgresql://`` URL), read-only, from one snapshot."""
    params = training_params(guild, min_votes)
    if isinstance(db_path, str) and db_path.startswith(("postgresql://", "postgres://")):
        return _read_postgres(db_path, params)
    path = Path(db_path)
    if not path.is_file():
        raise StoreError(f"there is no database file at {path}")
    try:
        # mode=ro: an export must never create, migrate or change the bot's database.
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0, isolation_level=None
        )
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if not 1 <= version <= LATEST_VERSION:
                raise StoreError(
                    f"{path} is not a quotebot database of a version this code reads "
                    f"(schema version {version}; this code knows 1 to {LATEST_VERSION})"
                )
            db.execute("BEGIN")  # both queries see one snapshot, even while the bot writes
            new = version >= EXCLUSIONS_VERSION
            favoured = db.execute(FAVOURED_SQL if new else FAVOURED_ALL_SQL, params).fetchall()
            source = db.execute(SOURCE_SQL if new else SOURCE_ALL_SQL, params).fetchall()
            db.execute("COMMIT")
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if is_busy_error(exc):
            raise StoreBusyError(str(path), _BUSY_S) from exc
        raise StoreError(f"{path}: cannot read the database ({exc})") from exc
    return training_quotes_from_rows(favoured, source)


def _read_postgres(url: str, params: dict[str, int | None]) -> list[TrainingQuote]:
    """``read_training_quotes`` on PostgreSQL: a read-only snapshot, never a migration."""
    import asyncio

    import asyncpg

    from bot.storage.postgres import PgConnection, redacted

    async def read() -> tuple[list, list]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                version = await conn.fetchval("SELECT version FROM quotebot_schema")
                if not 1 <= (version or 0) <= LATEST_VERSION:
                    raise StoreError(
                        f"{redacted(url)} is not a quotebot database of a version this code reads "
                        f"(schema version {version}; this code knows 1 to {LATEST_VERSION})"
                    )
                db = PgConnection(conn, frozenset())
                favoured = await (await db.execute(FAVOURED_SQL, params)).fetchall()
                source = await (await db.execute(SOURCE_SQL, params)).fetchall()
                return favoured, source
        finally:
            await conn.close()

    try:
        favoured, source = asyncio.run(read())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"{redacted(url)}: cannot read the database ({type(exc).__name__}: {exc})") from exc
    return training_quotes_from_rows(favoured, source)


def export_jsonl(
    db_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    guild: int | None = None,
    min_votes: int = 1,
) -> int:
    """Write favoured quotes (most votes first), then source quotes, as JSON lines; returns how many.

    Each line: ``{"text", "kind" ("favoured" | "source"), "guild", "votes", "seed", "model_version"}``;
    ``votes``, ``seed`` and ``model_version`` are null for source quotes, and ``seed`` is null once its
    requester asked to be forgotten. The bot may keep running; the file appears whole or not at all.
    """
    rows = read_training_quotes(db_path, guild, min_votes)
    out = Path(out_path)
    if out.is_dir():
        raise StoreInputError(f"the output path {out} is a folder; give a file name such as favoured.jsonl")
    if not out.parent.is_dir():
        raise StoreInputError(f"the folder for {out} does not exist")
    # A temporary file of an unpredictable name in the same folder (mkstemp: created new, never a file
    # or link someone placed there), flushed to disk, then renamed over the target: the file appears
    # whole or not at all, even after a power cut.
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(rows)
