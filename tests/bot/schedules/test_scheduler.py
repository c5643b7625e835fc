"""bot/schedules/scheduler.py with a hand-moved clock, a real SQLite store and a real tiny model.

Only Discord is stood in for: ``Channels`` is the ``post(channel_id, text)`` callable, with channels that
can be deleted, closed to the bot, or broken on purpose (the Discord adapter is tested end to end in
tests/discord/test_schedules.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.errors import SeedTooLongError, UnknownCharsError
from bot.quotes.options import CUT_MARK
from bot.quotes.service import QuoteService
from bot.schedules.rhythm import parse_schedule
from bot.schedules.scheduler import (
    ChannelGoneError,
    MissingPermissionError,
    PostError,
    Scheduler,
    ServiceGenerator,
    TickReport,
)
from bot.schedules.store import Schedule, ScheduleStore
from bot.serving.host import ModelHost
from bot.storage.db import fetch_one
from bot.storage.shards import Shards
from bot.storage.store import Store

UTC = timezone.utc
GUILD, ADMIN = 700_000_000_000_000_001, 720_000_000_000_000_001
GENERAL, RANDOM, NEWS = 710_000_000_000_000_001, 710_000_000_000_000_002, 710_000_000_000_000_003
START = datetime(2024, 10, 25, 8, 0, tzinfo=UTC)


class Clock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Channels:
    """Discord channels as the scheduler sees them: a post goes in, a message id comes back."""

    def __init__(self) -> None:
        self.posts: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.gone: set[int] = set()
        self.closed: set[int] = set()
        self.broken: set[int] = set()
        self.flaky: set[int] = set()
        self.attempts = 0
        self._ids = itertools.count(900_000_000_000_000_001)

    async def __call__(self, channel_id: int, text: str, quote_id: int | None = None) -> int:
        self.attempts += 1
        if channel_id in self.gone:
            raise ChannelGoneError()
        if channel_id in self.closed:
            raise MissingPermissionError()
        if channel_id in self.flaky:
            raise PostError("503 Service Unavailable")
        if channel_id in self.broken:
            raise RuntimeError("a bug in posting")
        message_id = next(self._ids)
        self.posts[channel_id].append((message_id, text))
        return message_id

    def count(self) -> int:
        return sum(len(posts) for posts in self.posts.values())


@pytest.fixture
async def store(tmp_path: Path):
    store = await Store.open(tmp_path / "quotes.db", busy_timeout=0.2)
    yield store
    await store.close()


@pytest.fixture
async def service(tiny_checkpoint: Path):
    host = ModelHost(tiny_checkpoint, device="cpu", queue_size=8, batch_size=4)
    await host.start()
    yield QuoteService(host, max_seed_chars=40, max_quote_chars=120, cooldown_seconds=10)
    await host.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def channels() -> Channels:
    return Channels()


@pytest.fixture
def schedules(store: Store) -> ScheduleStore:
    return ScheduleStore(store, max_per_guild=10)


@pytest.fixture
def scheduler(schedules: ScheduleStore, service: QuoteService, channels: Channels, clock: Clock) -> Scheduler:
    return Scheduler(schedules, ServiceGenerator(service), channels, clock=clock)


async def add(schedules: ScheduleStore, clock: Clock, text: str, channel: int = GENERAL) -> Schedule:
    rhythm, seed = parse_schedule(text, clock())
    return await schedules.add(
        guild_id=GUILD, channel_id=channel, created_by=ADMIN, rhythm=rhythm, seed=seed, now=clock()
    )


async def count_quotes(store: Store) -> int:
    return (await store.read(lambda db: fetch_one(db, "SELECT COUNT(*) FROM quotes")))[0]


async def test_posts_when_due_and_not_before(
    scheduler: Scheduler, schedules: ScheduleStore, store: Store, channels: Channels, clock: Clock
) -> None:
    schedule = await add(schedules, clock, "every 10m Hey,")
    clock.advance(minutes=9, seconds=59)
    assert (await scheduler.run_due()).posted == []
    clock.advance(seconds=1)
    report = await scheduler.run_due()
    assert report.posted == [schedule.id]
    ((message_id, text),) = channels.posts[GENERAL]
    assert text.startswith("Hey,") and len(text) <= 121  # 120 characters, perhaps a cut mark
    quote = await store.quote_by_message(message_id)
    assert quote is not None and quote.requester_id is None and quote.seed == "Hey,"
    assert text in (quote.text, quote.text.rstrip() + CUT_MARK)
    assert quote.settings["schedule_id"] == schedule.id and "rng_seed" in quote.settings
    assert (await schedules.get(GUILD, schedule.id)).next_run_at == START + timedelta(minutes=20)
    # The same moment again (another tick): nothing more.
    assert (await scheduler.run_due()).posted == []
    assert channels.count() == 1


async def test_two_processes_on_the_same_servers_post_each_run_once_and_generate_it_once(
    tmp_path: Path, service: QuoteService, channels: Channels, clock: Clock
) -> None:
    one = await Store.open(tmp_path / "shared.db", busy_timeout=10)
    two = await Store.open(tmp_path / "shared.db", busy_timeout=10)
    try:
        made = [await add(ScheduleStore(one), clock, "every 10m Hey,", channel=GENERAL + i) for i in range(6)]
        schedulers = [
            Scheduler(ScheduleStore(store), ServiceGenerator(service), channels, clock=clock, owner=name)
            for store, name in ((one, "process-a"), (two, "process-b"))
        ]
        clock.advance(minutes=10)
        reports = await asyncio.gather(*(scheduler.run_due() for scheduler in schedulers))
        posted = [sid for report in reports for sid in report.posted]
        assert sorted(posted) == sorted(s.id for s in made) and channels.count() == 6  # each once
        assert [r.superseded for r in reports] == [[], []]  # and none written twice only to be dropped
    finally:
        await one.close()
        await two.close()


async def test_two_processes_on_different_shards_each_post_only_their_servers(
    schedules: ScheduleStore, service: QuoteService, channels: Channels, clock: Clock
) -> None:
    guilds = {shard: ((1_000_000 + shard) << 22) | 7 for shard in range(2)}  # on shards 0 and 1 of 2
    ids = {}
    for shard, guild in guilds.items():
        rhythm, seed = parse_schedule("every 10m Hey,", clock())
        made = await schedules.add(guild_id=guild, channel_id=GENERAL + shard, created_by=ADMIN,
                                   rhythm=rhythm, seed=seed, now=clock())  # fmt: skip
        ids[shard] = made.id
    first, second = (
        Scheduler(schedules, ServiceGenerator(service), channels, clock=clock, shards=Shards((s,), 2))
        for s in (0, 1)
    )
    clock.advance(minutes=10)
    assert (await first.run_due()).posted == [ids[0]]
    assert channels.count() == 1 and len(channels.posts[GENERAL]) == 1
    assert (await second.run_due()).posted == [ids[1]]
    assert len(channels.posts[GENERAL + 1]) == 1


@pytest.mark.parametrize(
    ("rule", "downtime", "next_run"),
    [
        # Missed five slots: one catch-up, then the next slot of the 1-hour rhythm.
        ("every 1h", timedelta(hours=5, minutes=30), START + timedelta(hours=6)),
        # Missed three 09:00 posts in Paris (across the end of summer time on 27 October): one catch-up,
        # then 09:00 winter time, UTC+1, the next morning.
        ("daily 09:00 Europe/Paris", timedelta(days=3, hours=2), datetime(2024, 10, 29, 8, 0, tzinfo=UTC)),
    ],
)
async def test_after_downtime_one_catch_up_then_the_rhythm(
    scheduler: Scheduler,
    schedules: ScheduleStore,
    channels: Channels,
    clock: Clock,
    rule: str,
    downtime: timedelta,
    next_run: datetime,
) -> None:
    schedule = await add(schedules, clock, rule)
    clock.now = START + downtime
    assert (await scheduler.run_due()).posted == [schedule.id]
    assert (await scheduler.run_due()).posted == []  # no second catch-up for the other missed slots
    assert (await schedules.get(GUILD, schedule.id)).next_run_at == next_run
    clock.now = next_run - timedelta(seconds=1)
    assert (await scheduler.run_due()).posted == []
    clock.now = next_run
    assert (await scheduler.run_due()).posted == [schedule.id]
    assert channels.count() == 2


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [("gone", "no longer exists"), ("closed", "permission to send messages")],
)
async def test_a_channel_that_cannot_take_posts_pauses_its_schedule(
    scheduler: Scheduler,
    schedules: ScheduleStore,
    store: Store,
    channels: Channels,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    breakage: str,
    reason: str,
) -> None:
    schedule = await add(schedules, clock, "every 10m", channel=RANDOM)
    getattr(channels, breakage).add(RANDOM)
    clock.advance(minutes=10)
    with caplog.at_level(logging.WARNING, logger="bot.schedules.scheduler"):
        report = await scheduler.run_due()
    assert report.paused == [schedule.id]
    paused = await schedules.get(GUILD, schedule.id)
    assert paused.paused_reason is not None and reason in paused.paused_reason
    assert any(
        f"schedule {schedule.id}" in r.getMessage() and reason in r.getMessage() for r in caplog.records
    )
    assert await count_quotes(store) == 0  # the quote that never appeared is not kept
    clock.advance(hours=3)
    await scheduler.run_due()
    assert channels.attempts == 1  # paused: no more tries until someone resumes it


async def test_one_bad_schedule_does_not_stop_the_others(
    scheduler: Scheduler,
    schedules: ScheduleStore,
    store: Store,
    channels: Channels,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await add(schedules, clock, "every 10m", channel=GENERAL)
    buggy = await add(schedules, clock, "every 10m", channel=RANDOM)
    # A seed that slipped past the command's check (say, the model was retrained on fewer characters).
    snowman = await add(schedules, clock, "every 10m Hi \u2603", channel=NEWS)
    last = await add(schedules, clock, "every 10m", channel=NEWS)
    channels.broken.add(RANDOM)
    clock.advance(minutes=10)
    with caplog.at_level(logging.WARNING):
        report = await scheduler.run_due()
    assert sorted(report.posted) == [first.id, last.id]
    assert report.failed == [buggy.id] and report.paused == [snowman.id]
    assert "snowman" in (await schedules.get(GUILD, snowman.id)).paused_reason
    (bug,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"schedule {buggy.id}" in bug.getMessage() and "a bug in posting" in str(bug.exc_info[1])
    assert await count_quotes(store) == 2  # the bug's unsent quote was deleted
    # Its run was skipped, not repeated; fixed, it posts at its next slot along with the others.
    channels.broken.clear()
    clock.now = START + timedelta(minutes=20)
    assert sorted((await scheduler.run_due()).posted) == [first.id, buggy.id, last.id]
    assert len(channels.posts[RANDOM]) == 1


async def test_a_failed_send_skips_that_run_and_keeps_the_schedule(
    scheduler: Scheduler, schedules: ScheduleStore, store: Store, channels: Channels, clock: Clock
) -> None:
    schedule = await add(schedules, clock, "every 10m")
    channels.flaky.add(GENERAL)
    clock.advance(minutes=10)
    assert (await scheduler.run_due()).failed == [schedule.id]
    after = await schedules.get(GUILD, schedule.id)
    assert not after.paused and after.next_run_at == START + timedelta(minutes=20)
    assert await count_quotes(store) == 0
    channels.flaky.clear()
    clock.advance(minutes=10)
    assert (await scheduler.run_due()).posted == [schedule.id]


async def test_a_database_that_refuses_writes_posts_nothing(
    scheduler: Scheduler,
    schedules: ScheduleStore,
    store: Store,
    channels: Channels,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule = await add(schedules, clock, "every 10m")
    clock.advance(minutes=10)
    with sqlite3.connect(store.path, timeout=0) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the 0.2 s retry window
        with caplog.at_level(logging.ERROR):
            report = await scheduler.run_due()
        other.rollback()
    # Claiming the due schedule is a write: refused, so nothing was generated, posted or recorded.
    assert report == TickReport() and channels.attempts == 0
    assert "busy" in str(caplog.records[0].exc_info[1])
    clock.advance(minutes=1)
    assert (await scheduler.run_due()).posted == [schedule.id]  # once the lock is gone: one post
    assert (await schedules.get(GUILD, schedule.id)).next_run_at == START + timedelta(minutes=20)


async def test_a_post_the_database_refuses_to_record_is_not_sent_and_backs_off(
    scheduler: Scheduler,
    schedules: ScheduleStore,
    store: Store,
    channels: Channels,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule = await add(schedules, clock, "every 10m")
    clock.advance(minutes=10)
    trigger = "CREATE TRIGGER full BEFORE INSERT ON quotes BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    await store.write(lambda db: db.execute(trigger))
    with caplog.at_level(logging.ERROR):
        report = await scheduler.run_due()
    assert report.failed == [schedule.id] and channels.attempts == 0  # not recorded, so never sent
    assert "disk full" in str(caplog.records[0].exc_info[1])
    await store.write(lambda db: db.execute("DROP TRIGGER full"))
    clock.advance(minutes=1)  # still due, but it waits out the backoff instead of failing every tick
    assert (await scheduler.run_due()).waiting == [schedule.id]
    clock.advance(minutes=4)
    assert (await scheduler.run_due()).posted == [schedule.id]
    assert (await schedules.get(GUILD, schedule.id)).next_run_at == START + timedelta(minutes=20)


async def test_a_closing_bot_posts_nothing_and_keeps_the_run_due(
    scheduler: Scheduler, schedules: ScheduleStore, service: QuoteService, channels: Channels, clock: Clock
) -> None:
    schedule = await add(schedules, clock, "every 10m")
    clock.advance(minutes=10)
    assert await service.close(timeout=1)
    report = await scheduler.run_due()
    assert report.waiting == [schedule.id] and report.failed == [] and channels.attempts == 0
    assert (await schedules.get(GUILD, schedule.id)).next_run_at == START + timedelta(minutes=10)


async def test_the_seed_check_names_the_problem(service: QuoteService) -> None:
    assert await service.prepare_seed("Hey,", GUILD) == ("default", "Hey,")
    with pytest.raises(SeedTooLongError, match="41 characters"):
        await service.prepare_seed("a" * 41, GUILD)
    with pytest.raises(UnknownCharsError, match="snowman"):
        await service.prepare_seed("Hi \u2603", GUILD)


def test_a_naive_clock_is_refused(schedules: ScheduleStore, channels: Channels) -> None:
    async def generate(schedule: Schedule):
        raise AssertionError("not reached")

    scheduler = Scheduler(schedules, generate, channels, clock=lambda: datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduler.now()
