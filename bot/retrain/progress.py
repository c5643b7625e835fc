"""A retrain run's updates: what it says at each step, passed on at most every few seconds.

    handle = RunHandle(run, on_update=show, every_s=5.0)
    await handle.report(RunUpdate(run.id, "training", "step 40, loss 1.9"))   # may be held back
    await handle.report(RunUpdate(run.id, "promoted", "done", final=True))    # always passed on

Discord limits how often a message may be edited, and nobody reads a status line that changes
faster than every few seconds: within one phase an update is passed on only ``every_s`` after the
previous one; a new phase, and the final word, go out at once. The latest update is always kept
(``handle.latest``), so ``retrain status`` can show it. A callback that fails is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.storage.model_versions import ModelVersion, RetrainRun

if TYPE_CHECKING:
    from bot.retrain.child_process import Child

_log = logging.getLogger(__name__)


@dataclass
class RunUpdate:
    """Where a run stands: ``phase`` is training or scoring, or the final status when ``final``."""

    run_id: int
    phase: str
    text: str
    final: bool = False
    figures: dict = field(default_factory=dict)
    version: ModelVersion | None = None


OnUpdate = Callable[[RunUpdate], Awaitable[None]]


class RunHandle:
    """A run in progress: its row, its task, the child running now, and the last update."""

    def __init__(self, run: RetrainRun, on_update: OnUpdate | None, every_s: float):
        self.run = run
        self.on_update = on_update
        self.every_s = every_s
        self.task: asyncio.Task[RunUpdate] | None = None
        self.child: Child | None = None
        self.cancelled_by: int | None = None
        self.cancelled = False
        self.latest: RunUpdate | None = None
        self.delivered = 0
        self._last_sent, self._last_phase = -float("inf"), ""

    async def report(self, update: RunUpdate) -> None:
        """Pass the update on, unless one went out less than ``every_s`` ago in the same phase."""
        self.latest = update
        now = time.monotonic()
        if not update.final and update.phase == self._last_phase and now - self._last_sent < self.every_s:
            return
        self._last_sent, self._last_phase = now, update.phase
        if self.on_update is None:
            return
        try:
            await self.on_update(update)
            self.delivered += 1
        except Exception:  # a failed message edit must not end the run
            _log.warning("retrain %d: could not show an update", self.run.id, exc_info=True)
