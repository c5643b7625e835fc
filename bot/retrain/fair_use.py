"""Fair use of the machine by retrains: a per-server cooldown, a first-come queue, a cap on kept versions.

    left = cooldown_left(latest_run, now, minutes=60)       # seconds this server still waits (0: none)
    queue = RetrainQueue()
    position = queue.add(waiting)                           # 1 = next; one entry per server
    doomed = versions_to_prune(versions, serving, keep=5)   # oldest first, never serving or its parent

Plain logic, no I/O: ``bot.retrain.retrainer`` applies it. The queue lives in the bot's memory: a
restart forgets it (the status messages of queued requests say so only if asked; nothing was started).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import QuotebotError
from bot.storage.model_versions import ModelVersion, RetrainRun

# Runs that never used the machine in earnest do not start a cooldown: the bot restarted under them.
NO_COOLDOWN_STATUSES = ("interrupted",)


class RetrainCooldownError(QuotebotError):
    """This server retrained too recently."""


def cooldown_left(latest: RetrainRun | None, now: datetime, minutes: float) -> float:
    """Seconds until the server may start another retrain: ``minutes`` after its last run started."""
    if latest is None or minutes <= 0 or latest.status in NO_COOLDOWN_STATUSES:
        return 0.0
    waited = (now - latest.started_at).total_seconds()
    return max(0.0, minutes * 60.0 - waited)


def describe_wait(seconds: float) -> str:
    """``3 h 5 min``, ``12 min``, ``40 s``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60) + (1 if seconds % 60 else 0)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class Waiting:
    """A retrain request waiting for a free slot; ``on_update`` tells its status message where it stands."""

    guild_id: int
    requested_by: int | None
    channel_id: int | None
    status_message_id: int | None = None
    on_update: Any = None  # bot.retrain.progress.OnUpdate (not imported: progress imports the store)


class RetrainQueue:
    """First come, first served; each server holds at most one place."""

    def __init__(self) -> None:
        self._waiting: list[Waiting] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def position(self, guild_id: int) -> int | None:
        """1 for the next to start; None when the server is not waiting."""
        for index, waiting in enumerate(self._waiting):
            if waiting.guild_id == guild_id:
                return index + 1
        return None

    def add(self, waiting: Waiting) -> int:
        """Queue a request; its position. A server already waiting keeps its one place (ValueError)."""
        if self.position(waiting.guild_id) is not None:
            raise ValueError(f"server {waiting.guild_id} is already waiting")
        self._waiting.append(waiting)
        return len(self._waiting)

    def remove(self, guild_id: int) -> Waiting | None:
        """Take a server's request out of the queue (cancelled); None if it was not waiting."""
        for index, waiting in enumerate(self._waiting):
            if waiting.guild_id == guild_id:
                return self._waiting.pop(index)
        return None

    def pop(self) -> Waiting | None:
        """The request whose turn it is, or None."""
        return self._waiting.pop(0) if self._waiting else None

    def entries(self) -> list[Waiting]:
        """The waiting requests in order (a copy)."""
        return list(self._waiting)

    def clear(self) -> list[Waiting]:
        """Empty the queue; what was waiting."""
        waiting, self._waiting = self._waiting, []
        return waiting


def versions_to_prune(
    versions: Sequence[ModelVersion],
    serving: ModelVersion | None,
    keep: int,
    on_disk: Callable[[ModelVersion], bool],
) -> list[ModelVersion]:
    """The versions whose files go so that at most ``keep`` remain: oldest first, never the one serving
    nor its parent (so one ``rollback`` always works). ``on_disk``: does a version still have its file.
    """
    present = [v for v in sorted(versions, key=lambda v: v.id) if on_disk(v)]
    protected = {serving.id, serving.parent_id} if serving is not None else set()
    excess = len(present) - keep
    doomed = []
    for version in present:
        if excess <= 0:
            break
        if version.id in protected:
            continue
        doomed.append(version)
        excess -= 1
    return doomed
