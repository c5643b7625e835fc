"""The quote store's schema, one migration function per version, tracked in ``PRAGMA user_version``.

Version 0 is an empty file. ``MIGRATIONS[k]`` takes a database from version ``k`` to ``k + 1``. To add a table
(the retrain runs, the schedules), write ``async def _v2_...(db)`` that executes its statements and append it
to ``MIGRATIONS``; never edit a migration that has shipped. Each step runs in its own transaction together
with the new ``user_version``, so a failed step leaves the database exactly at the previous version.

    await migrate(db)                        # what Store.open does
    await migrate(db, target=1)              # tests: build an old-version database honestly
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import aiosqlite

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]


class MigrationError(RuntimeError):
    """A migration step failed or the database's schema version is not one this code understands."""


async def _execute_all(db: aiosqlite.Connection, statements: Sequence[str]) -> None:
    """Run a migration's statements inside the step's transaction."""
    # One execute each: sqlite3's executescript() would COMMIT first and break the step's transaction.
    for statement in statements:
        await db.execute(statement)


async def _v1_core(db: aiosqlite.Connection) -> None:
    """Quotes, votes, admin-added source quotes and per-guild settings."""
    statements = [
        # Every generated quote that was posted. guild_id is NULL for a direct message; channel_id and
        # message_id are NULL until the bot records where it sent the quote. requester_id and seed become
        # NULL when the requester asks to be forgotten; the quote itself (the bot's own output) stays.
        """CREATE TABLE quotes (
            id            INTEGER PRIMARY KEY,
            guild_id      INTEGER,
            channel_id    INTEGER,
            message_id    INTEGER UNIQUE,
            requester_id  INTEGER,
            seed          TEXT,
            text          TEXT NOT NULL,
            settings      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
            model_version TEXT NOT NULL,
            created_at    TEXT NOT NULL
        )""",
        "CREATE INDEX quotes_by_guild ON quotes (guild_id)",
        "CREATE INDEX quotes_by_requester ON quotes (requester_id)",
        # One vote per user and quote: the primary key is the uniqueness rule, so a doubled reaction event
        # can never count twice, whichever connection it arrives on.
        """CREATE TABLE votes (
            quote_id   INTEGER NOT NULL REFERENCES quotes (id) ON DELETE CASCADE,
            user_id    INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (quote_id, user_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX votes_by_user ON votes (user_id)",
        """CREATE TABLE source_quotes (
            id         INTEGER PRIMARY KEY,
            guild_id   INTEGER NOT NULL,
            added_by   INTEGER NOT NULL,
            text       TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX source_quotes_by_guild ON source_quotes (guild_id)",
        "CREATE INDEX source_quotes_by_user ON source_quotes (added_by)",
        # favourite_emoji: a Unicode emoji, or a custom emoji as 'name:id'.
        """CREATE TABLE guild_settings (
            guild_id        INTEGER PRIMARY KEY,
            favourite_emoji TEXT NOT NULL DEFAULT '⭐',
            updated_at      TEXT NOT NULL
        )""",
    ]
    await _execute_all(db, statements)


def dialect(db: object) -> str:
    """``"sqlite"`` or ``"postgresql"``: the SQL the connection a step (or an operation) was handed speaks."""
    return getattr(db, "dialect", "sqlite")


async def _v2_models_and_retrains(db: aiosqlite.Connection) -> None:
    """Per-guild model versions, which version each guild serves, and retrain runs."""
    statements = [
        # One row per retrain run. At most one run per guild is 'running' (the partial unique index), so
        # two admins typing !retrain at once cannot start two. requested_by is NULLed by forget_user.
        """CREATE TABLE retrain_runs (
            id                INTEGER PRIMARY KEY,
            guild_id          INTEGER NOT NULL,
            requested_by      INTEGER,
            status            TEXT NOT NULL CHECK (status IN
                                ('running', 'promoted', 'rejected', 'failed', 'cancelled', 'interrupted')),
            parent_version_id INTEGER REFERENCES model_versions (id),
            channel_id        INTEGER,
            status_message_id INTEGER,
            detail            TEXT,
            figures           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(figures)),
            started_at        TEXT NOT NULL,
            finished_at       TEXT
        )""",
        """CREATE UNIQUE INDEX one_running_retrain_per_guild
            ON retrain_runs (guild_id) WHERE status = 'running'""",
        # Every promoted model is a file under the models folder (path is relative to it) and a row here.
        # parent_id NULL means it was fine-tuned from the bundled model. trained_on holds counts as JSON.
        """CREATE TABLE model_versions (
            id          INTEGER PRIMARY KEY,
            guild_id    INTEGER NOT NULL,
            path        TEXT NOT NULL UNIQUE,
            parent_id   INTEGER REFERENCES model_versions (id),
            run_id      INTEGER REFERENCES retrain_runs (id),
            scores      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scores)),
            trained_on  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(trained_on)),
            created_at  TEXT NOT NULL
        )""",
        "CREATE INDEX model_versions_by_guild ON model_versions (guild_id)",
        # The version a guild serves; no row (or version_id NULL) means the bundled model.
        """CREATE TABLE guild_models (
            guild_id   INTEGER PRIMARY KEY,
            version_id INTEGER REFERENCES model_versions (id),
            updated_at TEXT NOT NULL
        )""",
    ]
    if dialect(db) == "postgresql":
        # PostgreSQL checks that a referenced table exists: the runs' key to versions comes after both.
        statements[0] = statements[0].replace("REFERENCES model_versions (id)", "")
        statements.append(
            "ALTER TABLE retrain_runs ADD FOREIGN KEY (parent_version_id) REFERENCES model_versions (id)"
        )
    await _execute_all(db, statements)


async def _v3_schedules(db: aiosqlite.Connection) -> None:
    """Scheduled quote posts."""
    statements = [
        # rhythm is JSON: {"every_s": 21600, "anchor": "<iso UTC>"} or
        # {"daily": "09:00", "zone": "Europe/Paris"}.
        # next_run_at is ISO UTC, moved in the same transaction that records a post, so a restart neither
        # posts twice nor skips. paused_reason is set when the channel is gone or the bot may not post there.
        """CREATE TABLE schedules (
            id             INTEGER PRIMARY KEY,
            guild_id       INTEGER NOT NULL,
            channel_id     INTEGER NOT NULL,
            created_by     INTEGER,
            rhythm         TEXT NOT NULL CHECK (json_valid(rhythm)),
            seed           TEXT NOT NULL DEFAULT '',
            next_run_at    TEXT NOT NULL,
            paused_reason  TEXT,
            last_posted_at TEXT,
            last_quote_id  INTEGER REFERENCES quotes (id) ON DELETE SET NULL,
            created_at     TEXT NOT NULL
        )""",
        "CREATE INDEX schedules_by_guild ON schedules (guild_id)",
        "CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused_reason IS NULL",
    ]
    await _execute_all(db, statements)


async def _v4_adder_role(db: aiosqlite.Connection) -> None:
    """Each server's quote-adder role, by id (a role's name can be taken by anyone with Manage Roles)."""
    # NULL: no role chosen, so only members with Manage Server may !addquote.
    await _execute_all(db, ["ALTER TABLE guild_settings ADD COLUMN adder_role_id INTEGER"])


async def _v5_run_owners(db: aiosqlite.Connection) -> None:
    """Which process owns a running retrain, and when it last said it was alive (several processes)."""
    statements = [
        # owner: the process's name (host and shards, see model_versions.owner_name); heartbeat_at: ISO UTC,
        # refreshed while the run lives. NULL in both: a run from before owners, treated as long dead.
        "ALTER TABLE retrain_runs ADD COLUMN owner TEXT",
        "ALTER TABLE retrain_runs ADD COLUMN heartbeat_at TEXT",
    ]
    await _execute_all(db, statements)


async def _v6_schedule_claims(db: aiosqlite.Connection) -> None:
    """Which process is posting a due schedule, until when (several processes share the table)."""
    statements = [
        # claimed_until: ISO UTC; a claim past it is void (its process died or hung), so others may take it.
        "ALTER TABLE schedules ADD COLUMN claimed_by TEXT",
        "ALTER TABLE schedules ADD COLUMN claimed_until TEXT",
    ]
    await _execute_all(db, statements)


async def _v7_retrain_exclusions(db: aiosqlite.Connection) -> None:
    """Quotes an admin left out of the server's retrains (``!retrain exclude ID``)."""
    statements = [
        # kind 'favoured' points at quotes.id, 'source' at source_quotes.id. No user id: an exclusion is the
        # server's decision, not a person's data. A row whose quote was deleted matches nothing.
        """CREATE TABLE retrain_exclusions (
            kind       TEXT NOT NULL CHECK (kind IN ('favoured', 'source')),
            item_id    INTEGER NOT NULL,
            guild_id   INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (kind, item_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX retrain_exclusions_by_guild ON retrain_exclusions (guild_id)",
    ]
    await _execute_all(db, statements)


# Append only. Index k holds the step from version k to version k + 1.
MIGRATIONS: list[Migration] = [
    _v1_core,
    _v2_models_and_retrains,
    _v3_schedules,
    _v4_adder_role,
    _v5_run_owners,
    _v6_schedule_claims,
    _v7_retrain_exclusions,
]
LATEST_VERSION = len(MIGRATIONS)


async def schema_version(db: aiosqlite.Connection) -> int:
    """The database's ``PRAGMA user_version`` (0 for a new, empty file)."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(
    db: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS, target: int | None = None
) -> tuple[int, int]:
    """Bring ``db`` (a connection in autocommit mode) to version ``target`` (default: the latest).

    Returns ``(version before, version after)``. Raises MigrationError for a database newer than this code or
    a failing step; a locked database raises sqlite3.OperationalError, which the store retries (each step
    re-reads the version inside its transaction, so two processes starting at once migrate only once).
    """
    latest = len(migrations)
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise MigrationError(f"cannot migrate to schema version {target}: versions run from 0 to {latest}")
    before = await schema_version(db)
    if before > latest:
        raise MigrationError(
            f"the database is at schema version {before}, newer than this code understands ({latest}); "
            "upgrade quotebot or use a copy of the database made before the upgrade"
        )
    # Foreign keys off while the schema changes: rebuilding a table (create, copy, drop, rename) with them on
    # would cascade-delete the votes of every quote. Each step checks the keys itself before committing.
    await db.execute("PRAGMA foreign_keys = OFF")
    try:
        for version in range(before + 1, target + 1):
            await _run_step(db, migrations[version - 1], version)
    finally:
        await db.execute("PRAGMA foreign_keys = ON")
    return before, max(before, target)


async def _run_step(db: aiosqlite.Connection, step: Migration, version: int) -> None:
    """Run one migration and set ``user_version`` in a single transaction."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        if await schema_version(db) >= version:
            # Another process applied it between our first read and our write lock.
            await db.execute("ROLLBACK")
            return
        await step(db)
        async with db.execute("PRAGMA foreign_key_check") as cursor:
            broken = await cursor.fetchall()
        if broken:
            raise MigrationError(f"{len(broken)} rows break a foreign key, e.g. {tuple(broken[0])}")
        # PRAGMA takes no parameters; version is an int from range(), never user input.
        await db.execute(f"PRAGMA user_version = {int(version)}")
        await db.execute("COMMIT")
    except BaseException as exc:
        # Some errors end the transaction inside SQLite already; a second ROLLBACK would then fail.
        if db.in_transaction:
            await db.execute("ROLLBACK")
        if isinstance(exc, MigrationError) or not isinstance(exc, Exception) or is_busy_error(exc):
            raise
        raise MigrationError(
            f"migration to schema version {version} ({step.__name__}) failed: {exc}"
        ) from exc


def is_busy_error(exc: BaseException) -> bool:
    """True for SQLite's 'database is locked' / 'database is busy' errors (worth retrying)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED and their extended codes
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text
