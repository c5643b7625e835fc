"""bot/storage/store.py on both backends (a real SQLite file, a real PostgreSQL database): the API,
concurrency, locks, privacy and hostile text."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.storage.db import dialect, fetch_one
from bot.storage.migrations import LATEST_VERSION
from bot.storage.store import (
    DEFAULT_EMOJI,
    Store,
    StoreBusyError,
    StoreError,
    StoreInputError,
    UnknownQuoteError,
)
from tests.postgres import sqlite_only

GUILD, OTHER_GUILD, CHANNEL = 700_000_000_000_000_001, 700_000_000_000_000_002, 710_000_000_000_000_001
SETTINGS = {"temperature": 0.8, "top_p": 0.95, "dry": {"multiplier": 0.8, "base": 1.75}}


@pytest.fixture
def db_path(store_target: Path | str) -> Path | str:
    """The store's file (SQLite, in a folder that does not exist yet) or a fresh PostgreSQL database."""
    return store_target


@pytest.fixture
async def store(db_path: Path):
    store = await Store.open(db_path)
    yield store
    await store.close()


async def add(store: Store, requester: int | None = 1, text: str = "Hey, the coffee.", **kw) -> int:
    fields = dict(guild_id=GUILD, channel_id=CHANNEL, requester_id=requester, seed="Hey,", text=text,
                  settings=SETTINGS, model_version="default")  # fmt: skip
    fields.update(kw)
    return await store.add_quote(**fields)


# -- quotes --


async def test_a_quote_is_stored_completely_and_read_back(db_path: Path) -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    async with await Store.open(db_path, clock=lambda: moment) as store:
        qid = await add(store, requester=42)
        quote = await store.get_quote(qid)
        assert quote is not None
        assert (quote.id, quote.guild_id, quote.channel_id, quote.requester_id) == (qid, GUILD, CHANNEL, 42)
        assert (quote.seed, quote.text, quote.model_version) == ("Hey,", "Hey, the coffee.", "default")
        assert quote.settings == SETTINGS
        assert quote.message_id is None and quote.votes == 0
        assert quote.created_at == moment and quote.created_at.utcoffset() == timedelta(0)
        assert await store.get_quote(qid + 1) is None
    # Reopened, everything is still there.
    async with await Store.open(db_path) as again:
        assert await again.get_quote(qid) == quote


async def test_message_ids_link_quotes_to_discord_messages(store: Store) -> None:
    first, second = await add(store), await add(store)
    assert await store.quote_by_message(9001) is None
    await store.set_quote_message(first, CHANNEL + 1, 9001)
    found = await store.quote_by_message(9001)
    assert found is not None and (found.id, found.channel_id, found.message_id) == (first, CHANNEL + 1, 9001)
    await store.set_quote_message(first, CHANNEL + 1, 9001)  # the same again is fine
    with pytest.raises(StoreInputError, match=f"message 9001 is already recorded for quote {first}"):
        await store.set_quote_message(second, CHANNEL, 9001)
    with pytest.raises(StoreInputError, match="already recorded"):
        await add(store, message_id=9001)
    with pytest.raises(UnknownQuoteError, match="no stored quote with id 99"):
        await store.set_quote_message(99, CHANNEL, 9002)
    direct = await add(store, message_id=9003, guild_id=None, channel_id=None)  # a direct message
    quote = await store.quote_by_message(9003)
    assert quote is not None and quote.id == direct and quote.guild_id is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"guild_id": "123"}, "guild_id must be a non-negative integer id, got '123'"),
        ({"requester_id": -5}, "requester_id must be a non-negative integer id"),
        ({"channel_id": True}, "channel_id must be a non-negative integer id"),
        ({"message_id": 2**63}, "message_id must be a non-negative integer id"),
        ({"text": "   "}, "the quote text must be a non-empty text"),
        ({"seed": None}, "the seed must be a text"),
        ({"model_version": ""}, "the model version must be a non-empty text"),
        ({"settings": {"temperature": float("nan")}}, "sampling settings must be plain JSON values"),
        ({"settings": {"device": object()}}, "sampling settings must be plain JSON values"),
    ],
)
async def test_bad_quote_fields_are_refused_by_name(store: Store, change: dict, message: str) -> None:
    with pytest.raises(StoreInputError, match=message.replace("(", r"\(")):
        await add(store, **change)
    assert await store.get_quote(1) is None  # nothing was written


async def test_top_quotes_rank_by_votes_within_the_guild(store: Store) -> None:
    ids = [await add(store, text=f"quote {i}") for i in range(5)]
    elsewhere = await add(store, guild_id=OTHER_GUILD)
    for qid, voters in zip(ids, [2, 0, 3, 2, 1], strict=True):
        for user in range(voters):
            await store.add_vote(qid, 1000 + user)
    for user in range(9):
        await store.add_vote(elsewhere, 1000 + user)
    await store.set_quote_message(ids[2], CHANNEL, 555)
    top = await store.top_quotes(GUILD, 10)
    # Most votes first, ties by age; the unvoted quote and the other guild's are left out.
    assert [(q.id, q.votes) for q in top] == [(ids[2], 3), (ids[0], 2), (ids[3], 2), (ids[4], 1)]
    assert (top[0].message_id, top[0].channel_id) == (555, CHANNEL)
    assert [q.id for q in await store.top_quotes(GUILD, 2)] == [ids[2], ids[0]]
    assert await store.top_quotes(OTHER_GUILD + 1) == []
    for bad in (0, 101, "3"):
        with pytest.raises(
            StoreInputError, match="the number of quotes must be a whole number from 1 to 100"
        ):
            await store.top_quotes(GUILD, bad)  # type: ignore[arg-type]


# -- votes --


async def test_one_vote_per_user_and_quote(store: Store) -> None:
    qid = await add(store)
    assert await store.add_vote(qid, 10) is True
    assert await store.add_vote(qid, 10) is False
    assert await store.add_vote(qid, 11) is True
    assert await store.vote_count(qid) == 2
    assert (await store.get_quote(qid)).votes == 2  # type: ignore[union-attr]
    assert await store.remove_vote(qid, 10) is True
    assert await store.remove_vote(qid, 10) is False
    assert await store.remove_vote(qid + 50, 10) is False
    assert await store.vote_count(qid) == 1
    with pytest.raises(UnknownQuoteError):
        await store.add_vote(qid + 50, 10)
    with pytest.raises(UnknownQuoteError):
        await store.vote_count(qid + 50)


async def test_200_concurrent_votes_from_50_users_over_4_connections(db_path: Path) -> None:
    stores = [await Store.open(db_path, busy_timeout=20) for _ in range(4)]
    try:
        quotes = [await add(stores[0], text=f"quote {i}") for i in range(5)]
        rng = random.Random(6)
        # Each of 50 users votes for 4 of the 5 quotes: 200 distinct votes. 60 of them are sent twice more,
        # as a flaky gateway might, and everything goes out at once, spread over the connections.
        wanted = [(q, user) for user in range(50) for q in rng.sample(quotes, 4)]
        writes = wanted + rng.sample(wanted, 60) + rng.sample(wanted, 60)
        rng.shuffle(writes)
        results = await asyncio.gather(
            *(stores[i % 4].add_vote(q, 5000 + user) for i, (q, user) in enumerate(writes))
        )
        assert sum(results) == 200 and len(results) == 320
        for q in quotes:
            expected = sum(1 for quote, _ in wanted if quote == q)
            assert await stores[1].vote_count(q) == expected
        sql = "SELECT COUNT(*), COUNT(DISTINCT quote_id || '/' || user_id) FROM votes"
        assert await stores[2].read(lambda db: fetch_one(db, sql)) == (200, 200)
    finally:
        for store in stores:
            await store.close()


# -- source quotes, settings --


async def test_source_quotes_are_trimmed_and_checked(store: Store) -> None:
    sid = await store.add_source_quote(GUILD, 77, "  I don't do Mondays; Mondays do me.\n")
    rows = await store.favoured_and_source_quotes(GUILD)
    assert [(r.kind, r.id, r.text, r.guild_id) for r in rows] == [
        ("source", sid, "I don't do Mondays; Mondays do me.", GUILD)
    ]
    with pytest.raises(StoreInputError, match="the quote must be a non-empty text"):
        await store.add_source_quote(GUILD, 77, " \n ")
    with pytest.raises(StoreInputError, match="2001 characters long; the limit is 2000"):
        await store.add_source_quote(GUILD, 77, "x" * 2001)


async def test_favoured_and_source_quotes_filter_by_guild_and_votes(store: Store) -> None:
    one, two, none = [await add(store, text=f"q{i}") for i in range(3)]
    far = await add(store, guild_id=OTHER_GUILD, text="far away")
    for user in (2, 3):  # not 1: the requester's own vote would not count
        await store.add_vote(two, user)
    await store.add_vote(one, 2)
    await store.add_vote(far, 2)
    source = await store.add_source_quote(GUILD, 9, "added by hand")
    rows = await store.favoured_and_source_quotes(GUILD)
    assert [(r.kind, r.id, r.votes) for r in rows] == [
        ("favoured", two, 2), ("favoured", one, 1), ("source", source, None)
    ]  # fmt: skip
    assert rows[0].seed == "Hey," and rows[0].model_version == "default"
    assert [r.id for r in await store.favoured_and_source_quotes(GUILD, min_votes=2)] == [two, source]
    assert {r.text for r in await store.favoured_and_source_quotes()} == {
        "q0",
        "q1",
        "far away",
        "added by hand",
    }
    assert none not in [r.id for r in rows if r.kind == "favoured"]
    with pytest.raises(StoreInputError, match="minimum number of votes must be a whole number of at least 1"):
        await store.favoured_and_source_quotes(GUILD, min_votes=0)


async def test_favourite_emoji_defaults_to_a_star_and_is_per_guild(store: Store) -> None:
    assert DEFAULT_EMOJI == "⭐"
    assert await store.get_favourite_emoji(GUILD) == "⭐"
    assert await store.set_favourite_emoji(GUILD, "🔥") == "🔥"
    assert (
        await store.set_favourite_emoji(OTHER_GUILD, "<:pat_star:123456789012345678>")
        == "pat_star:123456789012345678"
    )
    assert await store.get_favourite_emoji(GUILD) == "🔥"
    assert await store.get_favourite_emoji(OTHER_GUILD) == "pat_star:123456789012345678"
    assert await store.set_favourite_emoji(GUILD, "<a:dance:42>") == "dance:42"
    assert await store.get_favourite_emoji(GUILD) == "dance:42"
    with pytest.raises(StoreInputError, match="not an emoji"):
        await store.set_favourite_emoji(GUILD, "star")
    assert await store.get_favourite_emoji(GUILD) == "dance:42"


# -- privacy --

FORGOTTEN = 313_131_313_131_313_131  # a distinctive id, so a scan of every column finds only real traces


async def columns(store: Store) -> list[tuple[str, str]]:
    """(table, column) for every column of every table of the store, on either backend."""

    async def op(db) -> list[tuple[str, str]]:
        if dialect(db) == "sqlite":
            async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
                tables = [r[0] for r in await cursor.fetchall()]
            found = []
            for table in tables:
                async with db.execute(f'PRAGMA table_info("{table}")') as cursor:
                    found += [(table, r[1]) for r in await cursor.fetchall()]
            return found
        sql = """SELECT table_name, column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"""
        async with db.execute(sql) as cursor:
            return [tuple(r) for r in await cursor.fetchall()]

    return await store.read(op)


async def cells_mentioning(store: Store, needle: str) -> list[tuple[str, str, int]]:
    """(table, column, rows) for every column of every table whose text form contains ``needle``."""
    found = []
    for table, column in await columns(store):
        sql = f'SELECT COUNT(*) FROM "{table}" WHERE strpos(CAST("{column}" AS TEXT), ?) > 0'
        if dialect_of(store) == "sqlite":
            sql = sql.replace("strpos(", "instr(")
        if hits := (await store.read(lambda db, sql=sql: fetch_one(db, sql, (needle,))))[0]:
            found.append((table, column, hits))
    return found


def dialect_of(store: Store) -> str:
    return store.dialect


async def test_forget_user_leaves_nothing_of_them_behind(store: Store) -> None:
    theirs = [
        await add(store, requester=FORGOTTEN, seed=f"My secret {i}", text=f"My secret {i} is out")
        for i in range(3)
    ]
    others = await add(store, requester=2, seed="Hey,")
    await store.set_quote_message(theirs[0], CHANNEL, 8001)
    for qid in (theirs[0], others):
        await store.add_vote(qid, FORGOTTEN)
        await store.add_vote(qid, 3)
    await store.add_source_quote(GUILD, FORGOTTEN, "their own line")
    await store.add_source_quote(OTHER_GUILD, FORGOTTEN, "another of theirs")
    kept_source = await store.add_source_quote(GUILD, 3, "someone else's line")

    async def other_tables(db) -> None:  # the retrain and schedule tables (their APIs live elsewhere)
        await db.execute(
            "INSERT INTO retrain_runs (guild_id, requested_by, status, started_at)"
            " VALUES (?, ?, 'failed', 'now')",
            (GUILD, FORGOTTEN),
        )
        await db.execute(
            "INSERT INTO schedules (guild_id, channel_id, created_by, rhythm, next_run_at, created_at)"
            " VALUES (?, ?, ?, '{}', 'now', 'now')",
            (GUILD, CHANNEL, FORGOTTEN),
        )

    await store.write(other_tables)
    assert await cells_mentioning(store, str(FORGOTTEN))  # the scan does see them before

    result = await store.forget_user(FORGOTTEN)

    counts = (
        result.votes_deleted,
        result.quotes_deleted,
        result.seeds_blanked,
        result.quotes_unlinked,
        result.source_quotes_deleted,
        result.retrains_unlinked,
        result.schedules_unlinked,
    )
    # theirs[0] was favoured by user 3 and stays; theirs[1] and theirs[2] had no votes and go whole.
    assert counts == (2, 2, 1, 1, 2, 1, 1)
    assert result.total == 10
    assert await cells_mentioning(store, str(FORGOTTEN)) == []
    assert await cells_mentioning(store, "My secret 1") == []  # nobody favoured it: deleted whole
    assert await cells_mentioning(store, "My secret 0") == [("quotes", "text", 1)]  # favoured by others
    kept = await store.get_quote(theirs[0])
    assert kept is not None and kept.seed is None and kept.requester_id is None
    assert [await store.get_quote(qid) for qid in theirs[1:]] == [None, None]
    # Everyone else's data is untouched: their vote on the forgotten user's quote counts still.
    assert await store.vote_count(theirs[0]) == 1 and await store.vote_count(others) == 1
    assert (await store.get_quote(others)).seed == "Hey,"  # type: ignore[union-attr]
    assert [r.id for r in await store.favoured_and_source_quotes(GUILD) if r.kind == "source"] == [
        kept_source
    ]
    assert (await store.forget_user(FORGOTTEN)).total == 0


async def test_a_quote_asked_for_before_forget_and_arriving_after_it_is_not_stored(store: Store) -> None:
    asked = time.monotonic()  # the request began (the model is still writing it)
    await store.forget_user(FORGOTTEN)  # then the requester asks to be forgotten
    late = await add(store, requester=FORGOTTEN, seed="My secret", text="My secret, late", asked_at=asked)
    assert late is None
    assert await cells_mentioning(store, "My secret") == []
    assert await cells_mentioning(store, str(FORGOTTEN)) == []
    # Someone else's request of the same moment is stored, and so is the user's next request.
    assert await add(store, requester=2, seed="Hey,", asked_at=asked) is not None
    again = await add(store, requester=FORGOTTEN, seed="New", text="New start", asked_at=time.monotonic())
    assert again is not None and (await store.get_quote(again)).requester_id == FORGOTTEN  # type: ignore[union-attr]


# -- locks, bad files, hostile text --


async def test_a_locked_database_is_retried_then_refused_with_nothing_written(
    store: Store, db_path: Path, backend: str
) -> None:
    sqlite_only(backend, "another process's file lock (PostgreSQL's conflicts: test_postgres.py)")
    qid = await add(store)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        async with await Store.open(db_path, busy_timeout=0.4) as quick:
            started = time.monotonic()
            busy = (
                r"^the quote database is busy \(another program kept it locked for 0\.4 s\), so nothing was"
            )
            with pytest.raises(StoreBusyError, match=busy):
                await quick.add_vote(qid, 10)
            assert 0.35 <= time.monotonic() - started < 3
            assert await quick.vote_count(qid) == 0  # WAL: reading works while another process writes
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert await store.vote_count(qid) == 0
    assert await store.add_vote(qid, 10) is True


async def test_a_lock_released_within_the_window_is_waited_out(
    store: Store, db_path: Path, backend: str
) -> None:
    sqlite_only(backend, "another process's file lock (PostgreSQL's conflicts: test_postgres.py)")
    qid = await add(store)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute(
        "INSERT INTO source_quotes (guild_id, added_by, text, created_at) VALUES (1, 2, 'x', 'now')"
    )
    asyncio.get_running_loop().call_later(0.3, locker.execute, "COMMIT")
    started = time.monotonic()
    try:
        assert await store.add_vote(qid, 10) is True
    finally:
        locker.close()
    assert 0.25 <= time.monotonic() - started < 4
    assert await store.vote_count(qid) == 1


async def test_opening_a_locked_new_database_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusyError, match=r"kept it locked for 0\.2 s") as caught:
            await Store.open(path, busy_timeout=0.2)
        assert caught.value.path == str(path)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # not half-migrated
    async with await Store.open(path) as store:
        assert await store.top_quotes(GUILD) == []


async def test_bad_paths_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(StoreInputError, match="is a folder"):
        await Store.open(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreError, match=r"junk.db: the database failed \(file is not a database\)"):
        await Store.open(junk)
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 1}, newer than this code"):
        await Store.open(newer)
    with pytest.raises(StoreInputError, match="busy_timeout must be a positive number"):
        await Store.open(tmp_path / "x.db", busy_timeout=0)
    async with await Store.open(tmp_path / "naive.db", clock=lambda: datetime(2026, 1, 1)) as naive:
        with pytest.raises(StoreError, match="timezone-aware"):
            await add(naive)


async def test_sql_injection_text_is_stored_verbatim(store: Store) -> None:
    hostile = "Robert'); DROP TABLE quotes; --\" OR 1=1; /* */ ? :guild $1 ☃"
    qid = await add(store, seed=hostile, text=hostile, model_version=hostile, settings={hostile: hostile})
    # A NUL cannot be stored in PostgreSQL's text: both backends refuse it, with a clear message.
    for field in ("seed", "text"):
        with pytest.raises(StoreInputError, match="NUL character"):
            await add(store, **{field: "Hey,\x00 there"})
    assert await store.add_quote(guild_id=GUILD, channel_id=None, requester_id=None, seed="",
                                 text="fine", settings={"odd": "\x00"}, model_version="v")  # fmt: skip
    sid = await store.add_source_quote(GUILD, 5, hostile)
    quote = await store.get_quote(qid)
    assert quote is not None and quote.text == quote.seed == quote.model_version == hostile
    assert quote.settings == {hostile: hostile}
    assert [r.text for r in await store.favoured_and_source_quotes(GUILD) if r.id == sid] == [hostile]
    tables = {table for table, _column in await columns(store)}
    assert {"quotes", "votes", "source_quotes", "guild_settings"} <= tables
