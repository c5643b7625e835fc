"""Schedule rhythms: parsing ``every 6h`` / ``daily 09:00 Europe/Paris`` and next-run arithmetic.

    rhythm, seed = parse_schedule("daily 09:00 Europe/Paris Good morning,")
    rhythm.next_after(datetime.now(UTC))      # an aware UTC datetime

All instants are aware UTC datetimes; local wall-clock time only exists inside ``next_after``,
through ``astimezone``, so daylight-saving changes are handled by zoneinfo's rules, not by adding
hours. Policy at the changes, for ``daily HH:MM``:
- a wall time that does not exist that day (spring forward) posts at the same distance past the
  gap's start (02:30 in a 02:00->03:00 gap posts at 03:30), as PEP 495's ``fold=0`` defines;
- a wall time that happens twice (fall back) posts once, at the first occurrence.
Either way each local date gets exactly one post. Pure functions: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc
MIN_INTERVAL = timedelta(minutes=10)
MAX_INTERVAL = timedelta(days=30)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^(\d{1,6})\s*(m|min|h|d)$", re.IGNORECASE)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what to write instead."""


@dataclass(frozen=True)
class Rhythm:
    """Either a fixed interval from an anchor instant, or a daily local wall-clock time in a zone."""

    interval: timedelta | None = None
    anchor: datetime | None = None  # interval rhythms count from here (aware, UTC)
    at: time | None = None  # daily rhythms
    zone: str = "UTC"

    def describe(self) -> str:
        """Human text, e.g. ``every 6h`` or ``daily 09:00 Europe/Paris``."""
        if self.interval is not None:
            return f"every {format_interval(self.interval)}"
        assert self.at is not None
        return f"daily {self.at:%H:%M} {self.zone}"

    def next_after(self, instant: datetime) -> datetime:
        """The first run strictly after ``instant`` (aware), as an aware UTC datetime."""
        if instant.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        instant = instant.astimezone(UTC)
        if self.interval is not None:
            anchor = self.anchor or instant
            if instant < anchor:
                return anchor
            steps = (instant - anchor) // self.interval + 1
            return anchor + steps * self.interval
        return self._next_daily(instant)

    def _next_daily(self, instant: datetime) -> datetime:
        assert self.at is not None
        zone = ZoneInfo(self.zone)
        local_date = instant.astimezone(zone).date()
        # Today's slot may be past already; two days ahead always covers a 25-hour local day.
        for offset in range(3):
            day = local_date + timedelta(days=offset)
            candidate = datetime.combine(day, self.at, tzinfo=zone).astimezone(UTC)  # fold=0
            if candidate > instant:
                return candidate
        raise AssertionError("unreachable: a later local day always has a slot")

    def next_after_downtime(self, due: datetime, now: datetime) -> tuple[bool, datetime]:
        """Whether to post now for a run that fell due at ``due``, and the run after it.

        After downtime at most one catch-up post is made; the next run is then the first slot after
        ``now``, so the rhythm resumes instead of posting once per missed slot.
        """
        if due > now:
            return False, due
        return True, self.next_after(now)


def format_interval(interval: timedelta) -> str:
    """``6h``, ``90m``, ``2d``: the shortest exact form."""
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def parse_schedule(text: str, now: datetime | None = None) -> tuple[Rhythm, str]:
    """Parse ``every 6h [seed]`` or ``daily 09:00 [Area/City] [seed]`` into a rhythm and a seed."""
    words = text.split()
    if len(words) < 2 or words[0].lower() not in {"every", "daily"}:
        raise ScheduleError("write `every 6h [seed]` or `daily 09:00 [Area/City] [seed]`")
    if words[0].lower() == "every":
        match = _EVERY.match(words[1])
        if not match:
            raise ScheduleError(f"`{words[1]}` is not an interval: write a number and m, h or d, like `6h`")
        interval = timedelta(seconds=int(match[1]) * _UNITS[match[2].lower()])
        if interval < MIN_INTERVAL:
            raise ScheduleError(f"the shortest interval is {format_interval(MIN_INTERVAL)}")
        if interval > MAX_INTERVAL:
            raise ScheduleError(f"the longest interval is {format_interval(MAX_INTERVAL)}")
        anchor = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        return Rhythm(interval=interval, anchor=anchor), " ".join(words[2:])
    match = _CLOCK.match(words[1])
    if not match:
        raise ScheduleError(f"`{words[1]}` is not a time of day: write 24-hour HH:MM, like `09:00`")
    at = time(int(match[1]), int(match[2]))
    rest = words[2:]
    zone = "UTC"
    if rest and ("/" in rest[0] or rest[0].upper() == "UTC"):
        zone = check_zone(rest[0])
        rest = rest[1:]
    return Rhythm(at=at, zone=zone), " ".join(rest)


def check_zone(name: str) -> str:
    """An IANA zone name that zoneinfo knows, or a ScheduleError naming it."""
    if name.upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone `{name}`: use an IANA name such as `Europe/Paris`") from exc
    return name
