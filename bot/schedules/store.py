"""The schedules table: scheduled quote posts, and the one transaction that records a post.

    schedules = ScheduleStore(store, max_per_guild=10)
    rhythm, seed = parse_schedule("every 6h Hey,", now)
    schedule = await schedules.add(guild_id=1, channel_id=2, created_by=3, rhythm=rhythm, seed=seed, now=now)
    for schedule in await schedules.due(now):
        quote_id = await schedules.record_post(schedule.id, due_at=schedule.next_run_at, ...)

A repository over ``bot.storage.store.Store`` (its ``write``/``read`` operations, so each method is one
transaction).
Times are aware UTC datetimes here and fixed-width ISO 8601 text in the table (``_iso``), so SQLite's text
comparison ``next_run_at <= now`` orders them correctly.

Which side of the crash window: ``record_post`` is called *before* the message is sent. It stores the quote
and moves ``next_run_at`` in one transaction; only then does the scheduler post, and afterwards it records the
message id (``record_message``). A crash between the commit and the send therefore skips one post; it never
posts twice. The other order (send, then commit) would post twice after such a crash, and, worse, a database
that refuses writes (locked, full) would leave the schedule due, so every tick would post again: a flood. A
skipped post is the safer failure. If the send itself fails, ``undo_post`` deletes the never-posted quote
(and pauses the schedule when the channel is gone or closed to the bot); the slot stays skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

import aiosqlite

from bot.errors import QuotebotError
from bot.schedules.rhythm import Rhythm
from bot.storage.db import dialect, fetch_one, rowcount
from bot.storage.records import check_count, check_id, check_optional_id, check_text
from bot.storage.shards import Shards
from bot.storage.store import Store, StoreError, StoreInputError

UTC = timezone.utc
MAX_REASON_CHARS = 300

_COLUMNS = """id, guild_id, channel_id, created_by, rhythm, seed, next_run_at, paused_reason, last_posted_at,
              last_quote_id, created_at"""


class UnknownScheduleError(StoreError, QuotebotError, LookupError):
    """The server has no schedule with that id (other servers' schedules do not count)."""

    def __init__(self, schedule_id: int):
        self.schedule_id = schedule_id
        super().__init__(f"this server has no schedule with id {schedule_id}.")


class ScheduleLimitError(StoreError, QuotebotError):
    """The server already has as many schedules as it may."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"this server already has {limit} schedules, the most it may have; remove one first."
        )


class ScheduleNotPausedError(StoreError, QuotebotError):
    """``resume`` of a schedule that is running."""

    def __init__(self, schedule_id: int):
        super().__init__(f"schedule {schedule_id} is not paused.")


@dataclass(frozen=True)
class Schedule:
    """One scheduled post: where, how often, with what seed, and when it runs next."""

    id: int
    guild_id: int
    channel_id: int
    created_by: int | None  # None once the creator asked to be forgotten
    rhythm: Rhythm
    seed: str
    next_run_at: datetime  # aware UTC
    paused_reason: str | None  # None: running
    last_posted_at: datetime | None
    last_quote_id: int | None
    created_at: datetime

    @property
    def paused(self) -> bool:
        return self.paused_reason is not None


def _iso(instant: datetime) -> str:
    """Fixed-width ISO 8601 in UTC: text order is time order."""
    if instant.tzinfo is None:
        raise StoreInputError("schedule times must be timezone-aware datetimes")
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def rhythm_to_json(rhythm: Rhythm) -> str:
    """``{"every_s": N, "anchor": iso}`` or ``{"daily": "HH:MM", "zone": "Area/City"}``."""
    if rhythm.interval is not None:
        anchor = rhythm.anchor
        if anchor is None:
            raise StoreInputError("an interval rhythm needs an anchor instant to count from")
        return json.dumps({"every_s": int(rhythm.interval.total_seconds()), "anchor": _iso(anchor)})
    if rhythm.at is None:
        raise StoreInputError("a rhythm needs an interval or a time of day")
    return json.dumps({"daily": f"{rhythm.at:%H:%M}", "zone": rhythm.zone})


def rhythm_from_json(text: str) -> Rhythm:
    """The inverse of ``rhythm_to_json``."""
    data = json.loads(text)
    if "every_s" in data:
        return Rhythm(interval=timedelta(seconds=int(data["every_s"])), anchor=_time(data["anchor"]))
    hours, minutes = (int(part) for part in data["daily"].split(":"))
    return Rhythm(at=time(hours, minutes), zone=data["zone"])


def _schedule(row: Any) -> Schedule:
    sid, guild, channel, creator, rhythm, seed, next_run, reason, last_posted, last_quote, created = row
    next_at, created_at = _time(next_run), _time(created)
    assert next_at is not None and created_at is not None  # NOT NULL columns
    return Schedule(sid, guild, channel, creator, rhythm_from_json(rhythm), seed, next_at, reason,
                    _time(last_posted), last_quote, created_at)  # fmt: skip


async def _fetch(db: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> list[Schedule]:
    async with db.execute(f"SELECT {_COLUMNS} FROM schedules {sql}", params) as cursor:
        return [_schedule(row) for row in await cursor.fetchall()]


async def _owned(db: aiosqlite.Connection, guild_id: int, schedule_id: int) -> Schedule:
    found = await _fetch(db, "WHERE id = ? AND guild_id = ?", (schedule_id, guild_id))
    if not found:
        raise UnknownScheduleError(schedule_id)
    return found[0]


class ScheduleStore:
    """Scheduled posts in the quote store's database. Safe to share between tasks."""

    def __init__(self, store: Store, max_per_guild: int = 10):
        self.store = store
        self.max_per_guild = check_count("the schedule limit per server", max_per_guild, 1)

    async def add(
        self,
        *,
        guild_id: int,
        channel_id: int,
        created_by: int | None,
        rhythm: Rhythm,
        seed: str,
        now: datetime,
    ) -> Schedule:
        """A new running schedule whose first post is the rhythm's first slot after ``now``.

        ScheduleLimitError when the server already has ``max_per_guild`` schedules (paused ones count).
        """
        params = (check_id("guild_id", guild_id), check_id("channel_id", channel_id),
                  check_optional_id("created_by", created_by))  # fmt: skip
        if not isinstance(seed, str):
            raise StoreInputError(f"the seed must be a text, got {seed!r}")
        rhythm_json, next_run = rhythm_to_json(rhythm), _iso(rhythm.next_after(now))
        sql = """INSERT INTO schedules (guild_id, channel_id, created_by, rhythm, seed, next_run_at,
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"""

        async def op(db: aiosqlite.Connection) -> Schedule:
            # Counted inside the write transaction, so two admins at once cannot both pass the limit.
            count = (await fetch_one(db, "SELECT COUNT(*) FROM schedules WHERE guild_id = ?", (guild_id,)))[0]
            if count >= self.max_per_guild:
                raise ScheduleLimitError(self.max_per_guild)
            async with db.execute(sql, (*params, rhythm_json, seed, next_run, _iso(now))) as cursor:
                new_id = int(cursor.lastrowid or 0)
            return await _owned(db, guild_id, new_id)

        return await self.store.write(op)

    async def get(self, guild_id: int, schedule_id: int) -> Schedule:
        """The server's schedule with this id; UnknownScheduleError if it has none."""
        check_id("guild_id", guild_id)
        check_id("schedule_id", schedule_id)
        return await self.store.read(lambda db: _owned(db, guild_id, schedule_id))

    async def for_guild(self, guild_id: int) -> list[Schedule]:
        """The server's schedules, oldest first."""
        params = (check_id("guild_id", guild_id),)
        return await self.store.read(lambda db: _fetch(db, "WHERE guild_id = ? ORDER BY id", params))

    async def remove(self, guild_id: int, schedule_id: int) -> Schedule:
        """Delete the server's schedule ``schedule_id`` (never another server's); returns what it was."""
        check_id("guild_id", guild_id)
        check_id("schedule_id", schedule_id)

        async def op(db: aiosqlite.Connection) -> Schedule:
            schedule = await _owned(db, guild_id, schedule_id)
            await db.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            return schedule

        return await self.store.write(op)

    async def due(self, now: datetime, limit: int = 50, shards: Shards | None = None) -> list[Schedule]:
        """Running schedules whose next run is at or before ``now``, most overdue first; only those of
        servers on ``shards`` when given (another process posts the others)."""
        on_shards, shard_params = shards.where("guild_id") if shards else ("1 = 1", ())
        params = (_iso(now), *shard_params, check_count("the number of schedules", limit, 1, 1000))
        where = f"""WHERE paused_reason IS NULL AND next_run_at <= ? AND {on_shards}
                    ORDER BY next_run_at, id LIMIT ?"""
        return await self.store.read(lambda db: _fetch(db, where, params))

    async def claim_due(
        self,
        now: datetime,
        owner: str,
        *,
        limit: int = 50,
        shards: Shards | None = None,
        lease: timedelta = timedelta(minutes=5),
    ) -> list[Schedule]:
        """Take the due schedules (as ``due``) that no other process holds, for ``lease``.

        Several processes may share the table: each due schedule goes to one of them. PostgreSQL skips
        rows another process is claiming (``FOR UPDATE SKIP LOCKED``); SQLite has one writer at a time.
        A claim ends when ``record_post`` moves the schedule on, or when its lease runs out (its process
        died); the owner's own claims are taken again at its next tick (a post that had to wait).
        """
        on_shards, shard_params = shards.where("guild_id") if shards else ("1 = 1", ())
        count = check_count("the number of schedules", limit, 1, 1000)
        check_text("the owner", owner)
        at, until = _iso(now), _iso(now + lease)
        where = f"""WHERE paused_reason IS NULL AND next_run_at <= ? AND {on_shards}
                    AND (claimed_until IS NULL OR claimed_until <= ? OR claimed_by = ?)
                    ORDER BY next_run_at, id LIMIT ?"""
        params = (at, *shard_params, at, owner, count)

        async def op(db: aiosqlite.Connection) -> list[Schedule]:
            lock = " FOR UPDATE SKIP LOCKED" if dialect(db) == "postgresql" else ""
            taken = await _fetch(db, where + lock, params)
            for schedule in taken:
                sql = "UPDATE schedules SET claimed_by = ?, claimed_until = ? WHERE id = ?"
                await db.execute(sql, (owner, until, schedule.id))
            return taken

        return await self.store.claim(op)

    async def pause(self, schedule_id: int, reason: str) -> bool:
        """Stop a schedule, saying why (shown by ``!schedules``); False if it no longer exists."""
        params = (check_text("the reason", reason)[:MAX_REASON_CHARS], check_id("schedule_id", schedule_id))
        sql = "UPDATE schedules SET paused_reason = ? WHERE id = ?"
        return await self.store.write(lambda db: rowcount(db, sql, params)) == 1

    async def resume(self, guild_id: int, schedule_id: int, now: datetime) -> Schedule:
        """Restart a paused schedule at its first slot after ``now`` (the paused time is not caught up)."""
        check_id("guild_id", guild_id)
        check_id("schedule_id", schedule_id)

        async def op(db: aiosqlite.Connection) -> Schedule:
            schedule = await _owned(db, guild_id, schedule_id)
            if not schedule.paused:
                raise ScheduleNotPausedError(schedule_id)
            next_run = _iso(schedule.rhythm.next_after(now))
            sql = "UPDATE schedules SET paused_reason = NULL, next_run_at = ? WHERE id = ?"
            await db.execute(sql, (next_run, schedule_id))
            return await _owned(db, guild_id, schedule_id)

        return await self.store.write(op)

    async def record_post(
        self,
        schedule_id: int,
        *,
        due_at: datetime,
        next_run_at: datetime,
        posted_at: datetime,
        text: str,
        settings: Mapping[str, Any],
        model_version: str,
    ) -> int | None:
        """Store the quote about to be posted and move the schedule to ``next_run_at``, in one transaction.

        Call it before sending (see the module docstring for why). The quote is an ordinary stored quote:
        the schedule's guild, channel and seed, no requester, its message id set later by ``record_message``.
        Returns the quote's id, or None, writing nothing, when the schedule no longer runs at ``due_at``
        (removed or paused meanwhile, or another process took this slot).
        """
        check_id("schedule_id", schedule_id)
        check_text("the quote text", text)
        check_text("the model version", model_version)
        if next_run_at <= due_at:
            # A next run that is not later would post again at once, every tick: refuse it loudly.
            raise StoreInputError(
                f"the next run ({next_run_at}) must be after the run being posted ({due_at})"
            )
        try:
            settings_json = json.dumps(dict(settings), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreInputError(f"the sampling settings must be plain JSON values ({exc})") from exc
        posted = _iso(posted_at)
        claim = (schedule_id, _iso(due_at))

        async def op(db: aiosqlite.Connection) -> int | None:
            row = await fetch_one(
                db,
                """SELECT guild_id, channel_id, seed FROM schedules
                   WHERE id = ? AND next_run_at = ? AND paused_reason IS NULL""",
                claim,
            )
            if row is None:
                return None
            guild_id, channel_id, seed = row
            insert = """INSERT INTO quotes (guild_id, channel_id, requester_id, message_id, seed, text,
                        settings, model_version, created_at) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?)"""
            async with db.execute(
                insert, (guild_id, channel_id, seed, text, settings_json, model_version, posted)
            ) as cursor:
                quote_id = int(cursor.lastrowid or 0)
            move = """UPDATE schedules SET next_run_at = ?, last_posted_at = ?, last_quote_id = ?,
                      claimed_by = NULL, claimed_until = NULL WHERE id = ?"""
            await db.execute(move, (_iso(next_run_at), posted, quote_id, schedule_id))
            return quote_id

        return await self.store.write(op)

    async def undo_post(self, schedule: Schedule, quote_id: int, *, pause_reason: str | None = None) -> None:
        """The send failed: delete the quote that never appeared, put back the schedule's previous
        "last posted" record, and pause it with ``pause_reason`` if given. The skipped slot stays skipped."""
        check_id("quote_id", quote_id)
        reason = None if pause_reason is None else check_text("the reason", pause_reason)[:MAX_REASON_CHARS]
        last_posted = None if schedule.last_posted_at is None else _iso(schedule.last_posted_at)

        async def op(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM quotes WHERE id = ? AND message_id IS NULL", (quote_id,))
            # The previous quote may have been deleted since; then the link stays empty.
            sql = """UPDATE schedules SET last_posted_at = ?,
                     last_quote_id = (SELECT id FROM quotes WHERE id = ?),
                     paused_reason = COALESCE(?, paused_reason) WHERE id = ?"""
            await db.execute(sql, (last_posted, schedule.last_quote_id, reason, schedule.id))

        await self.store.write(op)

    async def record_message(self, quote_id: int, channel_id: int, message_id: int) -> None:
        """Note the message a scheduled quote was posted as, so reactions on it become votes."""
        await self.store.set_quote_message(quote_id, channel_id, message_id)
