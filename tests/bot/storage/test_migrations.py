"""bot/storage/migrations.py: the chain from every earlier schema version to the latest keeps every row."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from bot.storage.migrations import LATEST_VERSION, MIGRATIONS, MigrationError, migrate, schema_version
from bot.storage.postgres import PgConnection, migrate_postgres
from bot.storage.store import Store

# What a database at version k holds, written with that version's own SQL, and how to check it survived.
# A new migration needs an entry for the version it starts from: test_every_version_has_a_fixture says so.
Seeder = Callable[[aiosqlite.Connection], Awaitable[None]]
Checker = Callable[[Store], Awaitable[None]]


async def _seed_v1(db: aiosqlite.Connection) -> None:
    now = "2026-01-02T03:04:05+00:00"
    await db.execute(
        "INSERT INTO quotes (id, guild_id, channel_id, message_id, requester_id, seed, text, settings, "
        "model_version, created_at) VALUES (1, 10, 20, 30, 40, 'Hey,', 'Hey, you.', "
        "'{\"temperature\": 0.7}', 'default', ?)",
        (now,),
    )
    await db.execute(
        "INSERT INTO votes (quote_id, user_id, created_at) VALUES (1, 41, ?), (1, 42, ?)", (now, now)
    )
    await db.execute(
        "INSERT INTO source_quotes (guild_id, added_by, text, created_at) VALUES (10, 43, 'By hand.', ?)",
        (now,),
    )
    await db.execute(
        "INSERT INTO guild_settings (guild_id, favourite_emoji, updated_at) VALUES (10, '🔥', ?)", (now,)
    )


async def _check_v1(store: Store) -> None:
    quote = await store.get_quote(1)
    assert quote is not None
    assert (quote.guild_id, quote.channel_id, quote.message_id, quote.requester_id) == (10, 20, 30, 40)
    assert (quote.seed, quote.text, quote.settings, quote.votes) == (
        "Hey,",
        "Hey, you.",
        {"temperature": 0.7},
        2,
    )
    assert [(r.kind, r.text) for r in await store.favoured_and_source_quotes(10)] == [
        ("favoured", "Hey, you."),
        ("source", "By hand."),
    ]
    assert await store.get_favourite_emoji(10) == "🔥"


async def _rows(store: Store, sql: str) -> list[tuple]:
    async def op(db: aiosqlite.Connection) -> list[tuple]:
        async with db.execute(sql) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    return await store.read(op)


async def _seed_v2(db: aiosqlite.Connection) -> None:
    now = "2026-02-03T04:05:06+00:00"
    await db.execute(
        "INSERT INTO retrain_runs (id, guild_id, requested_by, status, figures, started_at, finished_at) "
        "VALUES (1, 10, 44, 'promoted', '{\"base_val_nats\": 1.41}', ?, ?)",
        (now, now),
    )
    await db.execute(
        "INSERT INTO model_versions (id, guild_id, path, parent_id, run_id, scores, trained_on, created_at) "
        "VALUES (1, 10, 'guild-10/v1.pt', NULL, 1, '{\"base_val_nats\": 1.41}', '{\"favoured\": 12}', ?)",
        (now,),
    )
    await db.execute("INSERT INTO guild_models (guild_id, version_id, updated_at) VALUES (10, 1, ?)", (now,))


async def _check_v2(store: Store) -> None:
    assert await _rows(store, "SELECT id, guild_id, requested_by, status FROM retrain_runs") == [
        (1, 10, 44, "promoted")
    ]
    rows = await _rows(store, "SELECT id, path, run_id, trained_on FROM model_versions")
    assert [(*row[:3], json.loads(row[3])["favoured"]) for row in rows] == [(1, "guild-10/v1.pt", 1, 12)]
    assert await _rows(store, "SELECT guild_id, version_id FROM guild_models") == [(10, 1)]


async def _seed_v3(db: aiosqlite.Connection) -> None:
    now = "2026-03-04T05:06:07+00:00"
    await db.execute(
        "INSERT INTO schedules (id, guild_id, channel_id, created_by, rhythm, seed, next_run_at, "
        "last_quote_id, created_at) VALUES (1, 10, 20, 45, ?, 'Hey,', '2026-03-05T08:00:00+00:00', 1, ?)",
        ('{"daily": "09:00", "zone": "Europe/Paris"}', now),
    )


async def _check_v3(store: Store) -> None:
    rows = await _rows(store, "SELECT id, channel_id, seed, rhythm, last_quote_id FROM schedules")
    assert [(*r[:3], json.loads(r[3])["zone"], r[4]) for r in rows] == [(1, 20, "Hey,", "Europe/Paris", 1)]


async def _seed_v5(db: aiosqlite.Connection) -> None:
    # The v2 run, now with an owner (the v2 checker reads every run, so no new row here).
    await db.execute(
        "UPDATE retrain_runs SET owner = 'host-a/shards 0', heartbeat_at = '2026-04-05T06:07:08+00:00'"
    )


async def _check_v5(store: Store) -> None:
    assert await _rows(store, "SELECT id, owner, heartbeat_at FROM retrain_runs") == [
        (1, "host-a/shards 0", "2026-04-05T06:07:08+00:00")
    ]


async def _seed_v6(db: aiosqlite.Connection) -> None:
    await db.execute(
        "UPDATE schedules SET claimed_by = 'host-a:1', claimed_until = '2026-05-06T07:08:09+00:00'"
    )


async def _check_v6(store: Store) -> None:
    assert await _rows(store, "SELECT id, claimed_by, claimed_until FROM schedules") == [
        (1, "host-a:1", "2026-05-06T07:08:09+00:00")
    ]


async def _seed_v4(db: aiosqlite.Connection) -> None:
    await db.execute(
        "INSERT INTO guild_settings (guild_id, favourite_emoji, adder_role_id, updated_at) "
        "VALUES (11, '⭐', 77, ?)",
        ("2026-03-04T05:06:07+00:00",),
    )


async def _check_v4(store: Store) -> None:
    assert await store.get_adder_role(11) == 77
    assert await store.get_adder_role(10) is None  # a guild of an older version: no role chosen


async def _seed_v7(db: aiosqlite.Connection) -> None:
    await db.execute(
        "INSERT INTO retrain_exclusions (kind, item_id, guild_id, created_at) "
        "VALUES ('source', 999, 10, '2026-04-05T06:07:08+00:00')"
    )


async def _check_v7(store: Store) -> None:
    rows = await _rows(store, "SELECT kind, item_id, guild_id FROM retrain_exclusions")
    assert rows == [("source", 999, 10)]  # a deleted quote's row: it matches nothing


FIXTURES: dict[int, tuple[Seeder, Checker]] = {
    1: (_seed_v1, _check_v1),
    2: (_seed_v2, _check_v2),
    3: (_seed_v3, _check_v3),
    4: (_seed_v4, _check_v4),
    5: (_seed_v5, _check_v5),
    6: (_seed_v6, _check_v6),
    7: (_seed_v7, _check_v7),
}


async def build_at(path: Path, version: int, migrations=MIGRATIONS) -> None:
    """A database at ``version``, made by running only the first ``version`` migrations, with its rows."""
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, migrations, target=version)  # version 0: an empty file
        for v in range(1, version + 1):
            await db.execute("BEGIN")
            await FIXTURES[v][0](db)
            await db.execute("COMMIT")


def test_every_version_has_a_fixture() -> None:
    assert set(FIXTURES) == set(range(1, LATEST_VERSION + 1)), (
        "add a seeder and a checker for the new version"
    )


@pytest.mark.parametrize("start", range(LATEST_VERSION + 1))
async def test_every_earlier_version_migrates_to_the_latest_keeping_rows(tmp_path: Path, start: int) -> None:
    path = tmp_path / f"v{start}.db"
    await build_at(path, start)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == start
    async with await Store.open(path) as store:
        for v in range(1, start + 1):
            await FIXTURES[v][1](store)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"quotes", "votes", "source_quotes", "guild_settings"} <= tables


@pytest.mark.parametrize("start", range(LATEST_VERSION + 1))
async def test_on_postgresql_every_earlier_version_migrates_to_the_latest_keeping_rows(
    postgres_url: str, start: int
) -> None:
    # The same history and the same rows as on SQLite: the seeders' SQL goes through the translation.
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await migrate_postgres(conn, MIGRATIONS[:start]) == (0, start)
        for v in range(1, start + 1):
            async with conn.transaction():
                await FIXTURES[v][0](PgConnection(conn, frozenset()))  # type: ignore[arg-type]
    finally:
        await conn.close()
    async with await Store.open(postgres_url) as store:
        for v in range(1, start + 1):
            await FIXTURES[v][1](store)
        version = await store.read(lambda db: db.execute("SELECT version FROM quotebot_schema"))
        assert await version.fetchone() == (LATEST_VERSION,)


async def test_migrating_an_up_to_date_database_changes_nothing(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "a.db", isolation_level=None) as db:
        assert await migrate(db) == (0, LATEST_VERSION)
        assert await migrate(db) == (LATEST_VERSION, LATEST_VERSION)
        assert await schema_version(db) == LATEST_VERSION


async def _v_next_reminders(db: aiosqlite.Connection) -> None:
    """A stand-in for a later migration that adds a table."""
    await db.execute(
        "CREATE TABLE reminders (id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL, every_s INTEGER)"
    )


async def _v_next_rebuild_quotes(db: aiosqlite.Connection) -> None:
    """A stand-in for a migration that rebuilds a referenced table, SQLite's way to change a constraint."""
    await db.execute(
        "CREATE TABLE quotes_new (id INTEGER PRIMARY KEY, guild_id INTEGER, channel_id INTEGER, "
        "message_id INTEGER, requester_id INTEGER, seed TEXT, text TEXT NOT NULL, settings TEXT NOT NULL, "
        "model_version TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    await db.execute("INSERT INTO quotes_new SELECT * FROM quotes")
    await db.execute("DROP TABLE quotes")
    await db.execute("ALTER TABLE quotes_new RENAME TO quotes")


@pytest.mark.parametrize("step", [_v_next_reminders, _v_next_rebuild_quotes])
async def test_an_appended_migration_keeps_every_row(tmp_path: Path, step) -> None:
    path = tmp_path / "a.db"
    await build_at(path, LATEST_VERSION)
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, [*MIGRATIONS, step]) == (LATEST_VERSION, LATEST_VERSION + 1)
        # Back to the version this code knows, or the store below would refuse a database from the future.
        await db.execute(f"PRAGMA user_version = {LATEST_VERSION}")
    async with await Store.open(path) as store:
        # The rebuild dropped the quotes table the votes point at: with foreign keys on during migrations,
        # that would have cascade-deleted both votes.
        await _check_v1(store)


async def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await build_at(path, LATEST_VERSION)

    async def half_done(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE half_built (id INTEGER PRIMARY KEY)")
        await db.execute("DELETE FROM votes")
        raise RuntimeError("disk on fire")

    async def breaks_a_key(db: aiosqlite.Connection) -> None:
        await db.execute("DELETE FROM quotes")  # leaves two votes and a schedule pointing at nothing

    async with aiosqlite.connect(path, isolation_level=None) as db:
        with pytest.raises(
            MigrationError, match=rf"version {LATEST_VERSION + 1} \(half_done\) failed: disk on fire"
        ):
            await migrate(db, [*MIGRATIONS, half_done])
        with pytest.raises(MigrationError, match="3 rows break a foreign key"):
            await migrate(db, [*MIGRATIONS, breaks_a_key])
        assert await schema_version(db) == LATEST_VERSION
        async with db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_built'") as cursor:
            assert (await cursor.fetchone())[0] == 0
    async with await Store.open(path) as store:
        await _check_v1(store)


async def test_versions_out_of_range_are_refused(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "a.db", isolation_level=None) as db:
        with pytest.raises(
            MigrationError,
            match=f"cannot migrate to schema version {LATEST_VERSION + 1}: versions run from 0 to "
            f"{LATEST_VERSION}",
        ):
            await migrate(db, target=LATEST_VERSION + 1)
        await db.execute(f"PRAGMA user_version = {LATEST_VERSION + 3}")
        with pytest.raises(MigrationError, match="newer than this code understands"):
            await migrate(db)


async def test_several_connections_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    stores = await asyncio.gather(*(Store.open(path, busy_timeout=20) for _ in range(6)))
    try:
        ids = await asyncio.gather(*(s.add_source_quote(1, 2, f"line {i}") for i, s in enumerate(stores)))
        assert sorted(ids) == list(range(1, 7))
    finally:
        for store in stores:
            await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
