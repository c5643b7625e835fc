"""bot/schedules/store.py on a real SQLite file and a real PostgreSQL database: limits, ownership, due
times, the post transaction."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from bot.schedules.rhythm import Rhythm, parse_schedule
from bot.schedules.store import (
    Schedule,
    ScheduleLimitError,
    ScheduleNotPausedError,
    ScheduleStore,
    UnknownScheduleError,
    rhythm_from_json,
    rhythm_to_json,
)
from bot.storage.db import dialect, fetch_one
from bot.storage.shards import Shards
from bot.storage.store import Store, StoreError, StoreInputError

UTC = timezone.utc
GUILD, OTHER_GUILD = 700_000_000_000_000_001, 700_000_000_000_000_002
CHANNEL, ADMIN = 710_000_000_000_000_001, 720_000_000_000_000_001
NOW = datetime(2024, 3, 30, 12, 0, 0, 250_000, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)
SETTINGS = {"temperature": 0.8, "max_chars": 120, "rng_seed": 42, "stopped": "end"}


@pytest.fixture
def db_path(store_target: Path | str) -> Path | str:
    """A SQLite file or a fresh PostgreSQL database: every test here runs on both."""
    return store_target


@pytest.fixture
async def store(db_path: Path):
    store = await Store.open(db_path)
    yield store
    await store.close()


@pytest.fixture
def schedules(store: Store) -> ScheduleStore:
    return ScheduleStore(store, max_per_guild=3)


async def add(schedules: ScheduleStore, text: str = "every 6h Hey,", guild: int = GUILD, now=NOW) -> Schedule:
    rhythm, seed = parse_schedule(text, now)
    return await schedules.add(
        guild_id=guild, channel_id=CHANNEL, created_by=ADMIN, rhythm=rhythm, seed=seed, now=now
    )


async def count_quotes(store: Store) -> int:
    return (await store.read(lambda db: fetch_one(db, "SELECT COUNT(*) FROM quotes")))[0]


async def post(schedules: ScheduleStore, schedule: Schedule, text: str = "Hey, the printer won.", **kw):
    due = schedule.next_run_at
    fields = dict(due_at=due, next_run_at=due + SIX_HOURS, posted_at=due, text=text, settings=SETTINGS,
                  model_version="default")  # fmt: skip
    fields.update(kw)
    return await schedules.record_post(schedule.id, **fields)


# -- rhythms in the table --


@pytest.mark.parametrize(
    "rhythm",
    [
        Rhythm(interval=timedelta(minutes=90), anchor=NOW),
        Rhythm(at=time(9, 0), zone="Europe/Paris"),
        Rhythm(at=time(23, 59), zone="UTC"),
    ],
)
def test_rhythm_json_round_trip(rhythm: Rhythm) -> None:
    assert rhythm_from_json(rhythm_to_json(rhythm)) == rhythm


async def test_added_schedules_read_back_with_their_first_run(schedules: ScheduleStore) -> None:
    every = await add(schedules, "every 6h Hey, you")
    daily = await add(schedules, "daily 09:00 Europe/Paris")
    assert (every.guild_id, every.channel_id, every.created_by, every.seed) == (
        GUILD,
        CHANNEL,
        ADMIN,
        "Hey, you",
    )
    assert every.next_run_at == NOW.replace(microsecond=0) + SIX_HOURS  # the anchor drops sub-seconds
    # 13:00 in Paris now, so the next 09:00 is tomorrow, 31 March 2024: summer time from 02:00 (UTC+2).
    assert daily.next_run_at == datetime(2024, 3, 31, 7, 0, tzinfo=UTC)
    assert daily.seed == "" and not daily.paused and daily.last_quote_id is None
    assert await schedules.get(GUILD, every.id) == every
    assert await schedules.for_guild(GUILD) == [every, daily]
    assert await schedules.for_guild(OTHER_GUILD) == []


# -- the per-server limit --


async def test_the_limit_counts_per_server_and_frees_up_on_remove(schedules: ScheduleStore) -> None:
    first = await add(schedules)
    await add(schedules)
    third = await add(schedules)
    await schedules.pause(third.id, "the channel no longer exists")  # paused ones count too
    with pytest.raises(ScheduleLimitError, match="already has 3 schedules"):
        await add(schedules)
    await add(schedules, guild=OTHER_GUILD)  # another server has its own allowance
    await schedules.remove(GUILD, first.id)
    await add(schedules)
    assert len(await schedules.for_guild(GUILD)) == 3


async def test_two_processes_at_the_limit_cannot_both_add(db_path: Path) -> None:
    one, two = await Store.open(db_path), await Store.open(db_path)
    try:
        results = await asyncio.gather(
            add(ScheduleStore(one, max_per_guild=1)),
            add(ScheduleStore(two, max_per_guild=1)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Schedule", "ScheduleLimitError"]
        assert len(await ScheduleStore(one).for_guild(GUILD)) == 1
    finally:
        await one.close()
        await two.close()


def test_a_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(StoreInputError, match="at least 1"):
        ScheduleStore(store, max_per_guild=0)


# -- ownership --


async def test_remove_touches_only_the_servers_own_schedule(schedules: ScheduleStore) -> None:
    mine = await add(schedules)
    theirs = await add(schedules, guild=OTHER_GUILD)
    with pytest.raises(UnknownScheduleError, match=f"no schedule with id {theirs.id}"):
        await schedules.remove(GUILD, theirs.id)
    with pytest.raises(UnknownScheduleError):
        await schedules.get(GUILD, theirs.id)
    assert await schedules.get(OTHER_GUILD, theirs.id) == theirs
    assert await schedules.remove(GUILD, mine.id) == mine
    assert await schedules.for_guild(GUILD) == []
    with pytest.raises(UnknownScheduleError):
        await schedules.remove(GUILD, mine.id)


# -- due schedules, pause and resume --


async def test_due_means_at_or_after_next_run_and_not_paused(schedules: ScheduleStore) -> None:
    early = await add(schedules, "every 1h")
    late = await add(schedules, "every 2h")
    paused = await add(schedules, "every 1h")
    await schedules.pause(paused.id, "I may not send messages in that channel")
    assert await schedules.due(early.next_run_at - timedelta(microseconds=1)) == []
    assert [s.id for s in await schedules.due(early.next_run_at)] == [early.id]
    assert [s.id for s in await schedules.due(late.next_run_at + timedelta(days=3))] == [early.id, late.id]
    assert [s.id for s in await schedules.due(late.next_run_at, limit=1)] == [early.id]  # most overdue first


async def test_due_only_for_servers_on_the_given_shards(schedules: ScheduleStore) -> None:
    on_0, on_1 = (1_000_000 << 22) | 1, (1_000_001 << 22) | 1  # shards 0 and 1 of 2
    first = await add(schedules, "every 1h", guild=on_0)
    second = await add(schedules, "every 1h", guild=on_1)
    later = first.next_run_at + timedelta(hours=1)
    assert [s.id for s in await schedules.due(later)] == [first.id, second.id]
    assert [s.id for s in await schedules.due(later, shards=Shards((0,), 2))] == [first.id]
    assert [s.id for s in await schedules.due(later, shards=Shards((1,), 2))] == [second.id]


async def test_two_processes_claiming_at_once_never_take_the_same_schedule(db_path: Path) -> None:
    one, two = await Store.open(db_path), await Store.open(db_path)  # two processes' connections
    try:
        made = [await add(ScheduleStore(one, max_per_guild=40), "every 1h", guild=GUILD) for _ in range(30)]
        later = made[-1].next_run_at + timedelta(minutes=1)
        stores = (ScheduleStore(one), ScheduleStore(two))
        owners = [f"process-{i}" for i in range(8)]  # eight claimers at once, over two connections
        claims = await asyncio.gather(
            *(stores[i % 2].claim_due(later, owner, limit=5) for i, owner in enumerate(owners))
        )
        taken = [s.id for claim in claims for s in claim]
        assert len(taken) == len(set(taken)) == 30  # every one once: none twice, none left
        # A claim holds against the others until it is posted or its lease ends.
        assert await stores[1].claim_due(later, "newcomer") == []
        again = await stores[0].claim_due(later, owners[0], limit=50)  # its own claims come back to it
        assert sorted(s.id for s in again) == sorted(s.id for s in claims[0])
        expired = await stores[1].claim_due(later + timedelta(minutes=6), "newcomer", limit=50)
        assert len(expired) == 30  # their processes died: after the lease, the newcomer takes them all
    finally:
        await one.close()
        await two.close()


async def test_posting_ends_the_claim(schedules: ScheduleStore) -> None:
    schedule = await add(schedules, "every 1h")
    at = schedule.next_run_at
    assert [s.id for s in await schedules.claim_due(at, "a")] == [schedule.id]
    assert await schedules.claim_due(at, "b") == []
    assert await post(schedules, schedule) is not None
    moved = await schedules.get(GUILD, schedule.id)
    assert [s.id for s in await schedules.claim_due(moved.next_run_at, "b")] == [schedule.id]


async def test_pause_shows_the_reason_and_resume_restarts_from_now(schedules: ScheduleStore) -> None:
    schedule = await add(schedules, "every 6h")
    assert await schedules.pause(schedule.id, "the channel no longer exists")
    paused = await schedules.get(GUILD, schedule.id)
    assert paused.paused and paused.paused_reason == "the channel no longer exists"
    with pytest.raises(UnknownScheduleError):
        await schedules.resume(OTHER_GUILD, schedule.id, NOW)
    later = NOW + timedelta(days=2, hours=1)
    resumed = await schedules.resume(GUILD, schedule.id, later)
    assert not resumed.paused
    # The rhythm keeps its anchor: the first 6-hour slot after `later`, no catch-up for the paused days.
    assert resumed.next_run_at == schedule.rhythm.next_after(later)
    assert later < resumed.next_run_at <= later + SIX_HOURS
    with pytest.raises(ScheduleNotPausedError, match="is not paused"):
        await schedules.resume(GUILD, schedule.id, later)
    assert not await schedules.pause(10_000, "gone")  # no such schedule: nothing to pause


# -- recording a post --


async def test_record_post_stores_an_ordinary_quote_and_moves_the_schedule(
    store: Store, schedules: ScheduleStore
) -> None:
    schedule = await add(schedules, "every 6h Hey,")
    quote_id = await post(schedules, schedule, "Hey, the printer won.")
    assert quote_id is not None
    moved = await schedules.get(GUILD, schedule.id)
    assert moved.next_run_at == schedule.next_run_at + SIX_HOURS
    assert (moved.last_posted_at, moved.last_quote_id) == (schedule.next_run_at, quote_id)
    quote = await store.get_quote(quote_id)
    assert quote is not None
    assert (quote.guild_id, quote.channel_id, quote.requester_id) == (GUILD, CHANNEL, None)
    assert (quote.seed, quote.text, quote.settings) == ("Hey,", "Hey, the printer won.", SETTINGS)
    assert quote.message_id is None
    # Once its message is known it is a quote like any other: votes count, retraining reads it.
    await schedules.record_message(quote_id, CHANNEL, 730_000_000_000_000_001)
    assert (await store.quote_by_message(730_000_000_000_000_001)).id == quote_id
    assert await store.add_vote(quote_id, user_id=5)
    favoured = await store.favoured_and_source_quotes(GUILD)
    assert [(q.kind, q.id, q.text) for q in favoured] == [("favoured", quote_id, "Hey, the printer won.")]


async def test_a_slot_is_recorded_once_only(store: Store, schedules: ScheduleStore) -> None:
    schedule = await add(schedules)
    assert await post(schedules, schedule) is not None
    assert await post(schedules, schedule) is None  # the same slot again (another process, a retry)
    paused = await add(schedules)
    await schedules.pause(paused.id, "the channel no longer exists")
    assert await post(schedules, paused) is None
    removed = await add(schedules, guild=OTHER_GUILD)
    await schedules.remove(OTHER_GUILD, removed.id)
    assert await post(schedules, removed) is None
    assert await count_quotes(store) == 1


async def test_a_next_run_that_is_not_later_is_refused(store: Store, schedules: ScheduleStore) -> None:
    schedule = await add(schedules)
    with pytest.raises(StoreInputError, match="must be after"):
        await post(schedules, schedule, next_run_at=schedule.next_run_at)
    with pytest.raises(StoreInputError, match="non-empty"):
        await post(schedules, schedule, text="  ")
    assert await count_quotes(store) == 0
    assert await schedules.get(GUILD, schedule.id) == schedule


async def fail_on(store: Store, event: str, table: str) -> None:
    """A trigger that makes ``event`` on ``table`` fail, as a full disk would."""

    async def op(db) -> None:
        if dialect(db) == "sqlite":
            await db.execute(
                f"CREATE TRIGGER fail {event} ON {table} BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
            )
            return
        await db.execute("CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$BEGIN RAISE EXCEPTION 'disk trouble'; END$$")  # fmt: skip
        await db.execute(f"CREATE TRIGGER fail {event} ON {table} FOR EACH ROW EXECUTE FUNCTION fail()")

    await store.write(op)


@pytest.mark.parametrize(
    ("event", "table"),
    # Fails after the quote was inserted: the insert must be rolled back with it.
    [("BEFORE UPDATE OF next_run_at", "schedules"), ("BEFORE INSERT", "quotes")],
)
async def test_record_post_is_all_or_nothing(db_path: Path, event: str, table: str) -> None:
    store = await Store.open(db_path)
    try:
        schedules = ScheduleStore(store)
        schedule = await add(schedules)
        await fail_on(store, event, table)
        with pytest.raises(StoreError, match="disk trouble"):
            await post(schedules, schedule)
        assert await count_quotes(store) == 0
        assert await schedules.get(GUILD, schedule.id) == schedule  # next run, last post: unchanged
    finally:
        await store.close()


async def test_after_a_restart_the_recorded_slot_is_neither_repeated_nor_skipped(db_path: Path) -> None:
    store = await Store.open(db_path)
    schedule = await add(ScheduleStore(store))
    await post(ScheduleStore(store), schedule)
    await store.close()
    store = await Store.open(db_path)  # the bot started again, at the moment it had posted
    try:
        schedules = ScheduleStore(store)
        assert await schedules.due(schedule.next_run_at + timedelta(minutes=1)) == []
        (again,) = await schedules.due(schedule.next_run_at + SIX_HOURS)
        assert again.id == schedule.id and again.next_run_at == schedule.next_run_at + SIX_HOURS
    finally:
        await store.close()


async def test_undo_post_deletes_the_unsent_quote_and_can_pause(
    store: Store, schedules: ScheduleStore
) -> None:
    schedule = await add(schedules)
    first = await post(schedules, schedule)
    posted = await schedules.get(GUILD, schedule.id)
    second = await post(schedules, posted)
    assert first is not None and second is not None
    await schedules.undo_post(posted, second, pause_reason="the channel no longer exists")
    after = await schedules.get(GUILD, schedule.id)
    assert await store.get_quote(second) is None and await store.get_quote(first) is not None
    assert (after.last_quote_id, after.last_posted_at) == (first, posted.last_posted_at)
    assert after.paused_reason == "the channel no longer exists"
    # Without a reason the schedule keeps running; the failed slot stays skipped (at most once).
    other = await add(schedules)
    quote_id = await post(schedules, other)
    assert quote_id is not None
    await schedules.undo_post(other, quote_id)
    kept = await schedules.get(GUILD, other.id)
    assert not kept.paused and kept.next_run_at == other.next_run_at + SIX_HOURS
    assert kept.last_quote_id is None and await count_quotes(store) == 1
