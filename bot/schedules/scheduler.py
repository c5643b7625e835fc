"""The scheduler: find due schedules, write a fresh quote for each, post it, record it. No discord.py here.

    scheduler = Scheduler(schedules, generate=ServiceGenerator(service), post=post_to_channel)
    report = await scheduler.run_due()          # once per tick; never raises for one schedule's trouble

``post(channel_id, text) -> message_id`` is the only way out to Discord; it raises ``ChannelGoneError`` or
``MissingPermissionError`` when the channel cannot take the post, and the schedule is then paused with that
reason. Per schedule, in this order: generate (nothing is written yet, so a failure here changes nothing),
``record_post`` (the quote and the next run, one transaction), send, record the message id. The post is
recorded *before* it is sent, so a crash or a database that refuses writes skips a post rather than
repeating it; ``bot/schedules/store.py`` explains the choice. After downtime a schedule posts once, then
resumes its rhythm (``Rhythm.next_after_downtime``). With ``shards`` it posts only for the servers on this
process's shards (``SHARD_IDS``); the processes running the other shards post theirs. Due schedules are
claimed (``ScheduleStore.claim_due``), so processes sharing a store never take the same one. ``clock`` is
injectable, so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.errors import BusyError, QuotebotError, ShuttingDownError, log_unexpected
from bot.ops import metrics
from bot.quotes.options import DEFAULT_TEMPERATURE, QuoteOptions
from bot.quotes.service import QuoteRequest, QuoteService
from bot.schedules.store import Schedule, ScheduleStore
from bot.storage.shards import Shards

UTC = timezone.utc
_log = logging.getLogger(__name__)


class PostError(Exception):
    """The post did not go out, for a reason that may pass (the slot is skipped, the schedule runs on)."""


class ChannelUnusableError(PostError):
    """The channel cannot take posts until someone fixes it: the schedule is paused with ``reason``."""

    reason = "the channel cannot take posts"

    def __init__(self, reason: str | None = None):
        if reason is not None:
            self.reason = reason
        super().__init__(self.reason)


class ChannelGoneError(ChannelUnusableError):
    reason = "the channel no longer exists (or I can no longer see it)"


class MissingPermissionError(ChannelUnusableError):
    reason = "I don't have permission to send messages in that channel"


class NothingToSayError(QuotebotError):
    """The model ended the quote before writing anything, several times over."""

    def __init__(self) -> None:
        super().__init__("the model wrote an empty quote; it will try again next time")


@dataclass(frozen=True)
class Generated:
    """A quote written for a schedule: what is stored, what is posted, and how it was made."""

    text: str  # the whole quote, seed included: what is stored and trained on
    message: str  # what is posted: within Discord's limit, with a mark where it was cut
    settings: dict[str, Any]
    model_version: str


Generate = Callable[[Schedule], Awaitable[Generated]]
Post = Callable[[int, str, int], Awaitable[int]]  # (channel id, text, stored quote id) -> message id


class ServiceGenerator:
    """Writes scheduled quotes through ``QuoteService.write``: the server's model, the seed rules and the
    model host as for a user's quote, without a cooldown (no user asked) and without the service storing
    it (the schedule store records it with the next run). An empty quote is tried again, up to
    ``attempts`` times."""

    def __init__(self, service: QuoteService, temperature: float = DEFAULT_TEMPERATURE, attempts: int = 3):
        self.service = service
        self.options = QuoteOptions(temperature=temperature)
        self.attempts = attempts

    async def __call__(self, schedule: Schedule) -> Generated:
        request = QuoteRequest(schedule.seed, self.options, guild_id=schedule.guild_id)
        for _ in range(self.attempts):
            result = await self.service.write(request, remember=False)
            if result.text.strip():
                break
        else:
            raise NothingToSayError()
        settings = {**result.settings, "schedule_id": schedule.id}  # stored as a user's, plus which schedule
        return Generated(result.text, result.reply, settings, result.model_version)


@dataclass
class TickReport:
    """What one ``run_due`` did, by schedule id."""

    posted: list[int] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # logged: a bug (retried after a backoff), a failed send
    waiting: list[int] = field(default_factory=list)  # model busy, or backing off after an error
    superseded: list[int] = field(default_factory=list)  # removed, paused or taken meanwhile


class Scheduler:
    """Runs due schedules; ``run_due`` once per tick. One schedule's trouble never stops the others."""

    def __init__(
        self,
        schedules: ScheduleStore,
        generate: Generate,
        post: Post,
        *,
        clock: Callable[[], datetime] | None = None,
        batch: int = 50,
        parallel: int = 4,
        error_backoff: timedelta = timedelta(minutes=5),
        shards: Shards | None = None,
        owner: str | None = None,
    ):
        self.schedules = schedules
        self.generate = generate
        self.post = post
        self.clock = clock or (lambda: datetime.now(UTC))
        self.batch = batch
        self.error_backoff = error_backoff
        self.shards = shards  # None: every server's schedules; else only those on this process's shards
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"  # the name its claims carry
        self._slots = asyncio.Semaphore(parallel)  # concurrent quotes let the model host batch them
        # Schedule id -> when to try again after an unexpected error, so a broken one is not retried (and
        # logged) every tick. In memory only: a restart retries at once, which is what an operator wants.
        self._retry_at: dict[int, datetime] = {}

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the scheduler's clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    async def run_due(self) -> TickReport:
        """Post every due schedule once. Errors are logged per schedule; only cancellation propagates."""
        report = TickReport()
        now = self.now()
        try:
            due = await self.schedules.claim_due(now, self.owner, limit=self.batch, shards=self.shards)
        except Exception as exc:
            log_unexpected(_log, exc, "claiming due schedules")
            return report
        await asyncio.gather(*(self._guarded(schedule, now, report) for schedule in due))
        metrics.count_scheduled(vars(report))
        return report

    async def _guarded(self, schedule: Schedule, now: datetime, report: TickReport) -> None:
        retry_at = self._retry_at.get(schedule.id)
        if retry_at is not None and now < retry_at:
            report.waiting.append(schedule.id)
            return
        async with self._slots:
            try:
                outcome = await self.run_one(schedule, now)
            except ShuttingDownError:
                report.waiting.append(schedule.id)  # the bot is closing; the slot is still due
                return
            except Exception as exc:
                self._retry_at[schedule.id] = now + self.error_backoff
                log_unexpected(_log, exc, f"schedule {schedule.id} (guild {schedule.guild_id})")
                report.failed.append(schedule.id)
                return
        self._retry_at.pop(schedule.id, None)
        getattr(report, outcome).append(schedule.id)

    async def run_one(self, schedule: Schedule, now: datetime) -> str:
        """Post one due schedule; the name of its ``TickReport`` list. Unexpected errors propagate."""
        post_now, next_run = schedule.rhythm.next_after_downtime(schedule.next_run_at, now)
        if not post_now:
            return "superseded"  # not due (after all): nothing to do
        try:
            generated = await self.generate(schedule)
        except (BusyError, NothingToSayError):
            return "waiting"  # the queue is full of users' quotes, or an empty quote: next tick
        except ShuttingDownError:
            raise
        except QuotebotError as exc:
            # The seed no longer suits the model (a retrained vocabulary, a lower limit): a human must act.
            await self._pause(schedule, f"the seed cannot be used: {exc}")
            return "paused"
        quote_id = await self.schedules.record_post(
            schedule.id,
            due_at=schedule.next_run_at,
            next_run_at=next_run,
            posted_at=now,
            text=generated.text,
            settings=generated.settings,
            model_version=generated.model_version,
        )
        if quote_id is None:
            return "superseded"
        try:
            message_id = await self.post(schedule.channel_id, generated.message, quote_id)
        except ChannelUnusableError as exc:
            await self.schedules.undo_post(schedule, quote_id, pause_reason=exc.reason)
            self._log_pause(schedule, exc.reason)
            return "paused"
        except PostError as exc:
            await self._undo_quietly(schedule, quote_id)
            _log.warning("schedule %d: post to channel %d failed, this run is skipped (next %s): %s",
                         schedule.id, schedule.channel_id, next_run.isoformat(), exc)  # fmt: skip
            return "failed"
        except BaseException:
            await self._undo_quietly(schedule, quote_id)
            raise
        try:
            await self.schedules.record_message(quote_id, schedule.channel_id, message_id)
        except Exception as exc:  # posted all the same; only votes on this one message are lost
            _log.warning("schedule %d: message %d not recorded for quote %d: %s", schedule.id,
                         message_id, quote_id, exc)  # fmt: skip
        _log.info("schedule %d posted quote %d in channel %d; next run %s", schedule.id, quote_id,
                  schedule.channel_id, next_run.isoformat())  # fmt: skip
        return "posted"

    async def _pause(self, schedule: Schedule, reason: str) -> None:
        await self.schedules.pause(schedule.id, reason)
        self._log_pause(schedule, reason)

    @staticmethod
    def _log_pause(schedule: Schedule, reason: str) -> None:
        _log.warning("schedule %d (guild %d, channel %d) paused: %s", schedule.id, schedule.guild_id,
                     schedule.channel_id, reason)  # fmt: skip

    async def _undo_quietly(self, schedule: Schedule, quote_id: int) -> None:
        """Delete the never-posted quote after a failed send; the send's error is the one that matters."""
        try:
            await self.schedules.undo_post(schedule, quote_id)
        except Exception as exc:
            _log.warning("schedule %d: unsent quote %d not deleted: %s", schedule.id, quote_id, exc)
