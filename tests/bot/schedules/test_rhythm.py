"""Schedule parsing and next-run arithmetic, including a property test across zones and DST changes."""

import itertools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.schedules.rhythm import MIN_INTERVAL, Rhythm, ScheduleError, parse_schedule

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago",
         "Pacific/Chatham", "Europe/London", "America/St_Johns", "Africa/Casablanca"]  # fmt: skip


def test_parse_every_with_seed():
    rhythm, seed = parse_schedule("every 6h Good morning,", now=NOW)
    assert rhythm.interval == timedelta(hours=6) and rhythm.anchor == NOW
    assert seed == "Good morning,"
    assert rhythm.describe() == "every 6h"


def test_parse_daily_with_zone_and_without():
    rhythm, seed = parse_schedule("daily 09:00 Europe/Paris Hey,")
    assert (rhythm.at, rhythm.zone, seed) == (time(9, 0), "Europe/Paris", "Hey,")
    rhythm, seed = parse_schedule("daily 7:05")
    assert (rhythm.at, rhythm.zone, seed) == (time(7, 5), "UTC", "")
    assert rhythm.describe() == "daily 07:05 UTC"


@pytest.mark.parametrize(
    "text, message",
    [
        ("every 5m", "shortest interval is 10m"),
        ("every 90d", "longest interval"),
        ("every soon", "not an interval"),
        ("daily 25:00", "not a time of day"),
        ("daily 09:00 Mars/Olympus", "unknown time zone `Mars/Olympus`"),
        ("weekly 09:00", "write `every 6h"),
        ("every", "write `every 6h"),
    ],
)
def test_bad_schedules_get_a_clear_message(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(text, now=NOW)


def test_interval_counts_from_the_anchor_not_from_now():
    rhythm = Rhythm(interval=timedelta(hours=6), anchor=NOW)
    assert rhythm.next_after(NOW) == NOW + timedelta(hours=6)
    assert rhythm.next_after(NOW + timedelta(hours=7)) == NOW + timedelta(hours=12)
    assert rhythm.next_after(NOW - timedelta(days=1)) == NOW


def test_daily_in_paris_across_the_spring_change():
    rhythm = Rhythm(at=time(9, 0), zone="Europe/Paris")
    before = rhythm.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # Sunday 29 March: CET -> CEST
    after = rhythm.next_after(before)
    assert before == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert after == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert rhythm.next_after(datetime(2026, 3, 27, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 28, 8, 0, tzinfo=UTC
    )


def test_a_wall_time_in_the_gap_posts_after_it_and_a_repeated_one_posts_once():
    ny = ZoneInfo("America/New_York")
    gap = Rhythm(at=time(2, 30), zone="America/New_York")  # 8 March 2026, 02:00 -> 03:00
    run = gap.next_after(datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    assert run.astimezone(ny).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)
    twice = Rhythm(at=time(1, 30), zone="America/New_York")  # 1 November 2026, 02:00 -> 01:00
    first = twice.next_after(datetime(2026, 11, 1, 4, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert twice.next_after(first).astimezone(ny).date() == date(2026, 11, 2)


def test_downtime_posts_one_catch_up_then_resumes_the_rhythm():
    rhythm = Rhythm(interval=timedelta(hours=1), anchor=NOW)
    due = NOW + timedelta(hours=1)
    now = NOW + timedelta(hours=5, minutes=20)  # four slots missed
    post, next_run = rhythm.next_after_downtime(due, now)
    assert post is True and next_run == NOW + timedelta(hours=6)
    post, next_run = rhythm.next_after_downtime(next_run, now + timedelta(minutes=1))
    assert post is False and next_run == NOW + timedelta(hours=6)


def test_minimum_interval_is_ten_minutes():
    assert timedelta(minutes=10) == MIN_INTERVAL
    assert parse_schedule("every 10m", now=NOW)[0].interval == MIN_INTERVAL


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_daily_runs_once_per_local_date_at_the_wall_time_when_it_exists(zone, start, hour, minute):
    rhythm = Rhythm(at=time(hour, minute), zone=zone)
    tz = ZoneInfo(zone)
    run = rhythm.next_after(start)
    assert run > start
    dates = []
    for _ in range(5):
        local = run.astimezone(tz)
        dates.append(local.date())
        # Where the wall time exists that day, the post is exactly at it.
        wall = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
        exists = wall.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None)
        if exists:
            assert (local.hour, local.minute) == (hour, minute)
        following = rhythm.next_after(run)
        assert timedelta(hours=21) <= following - run <= timedelta(hours=27)
        run = following
    assert all(later - earlier == timedelta(days=1) for earlier, later in itertools.pairwise(dates))


@settings(max_examples=200, deadline=None)
@given(
    anchor=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(10, 60 * 24 * 7),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_interval_runs_stay_on_the_anchor_grid(anchor, minutes, later):
    rhythm = Rhythm(interval=timedelta(minutes=minutes), anchor=anchor)
    run = rhythm.next_after(anchor + later)
    assert anchor + later < run <= anchor + later + rhythm.interval
    assert (run - anchor) % rhythm.interval == timedelta(0)
