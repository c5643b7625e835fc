"""The work the bot has started and must finish before it closes its store: replies, votes, commands.

    in_flight = InFlight()
    async with in_flight.track():            # a command, a button, a reply: refused once closing
        ...
    async with in_flight.track(vote=True):   # a ⭐: still taken while the replies finish
        ...
    finished = await in_flight.drain(timeout=30)   # the bot's close: then the host and the store

Every place where an event enters the bot (commands, interactions, reactions, the schedule loop) holds
one ``track()`` around its whole handling, so the bot's close waits for it and closes the store only
when nothing uses it. Closing has three states: open; draining (``drain`` began: new work is refused
with ``ShuttingDownError``, but a vote is still taken and counted, since it is one short write and the
store is still open; losing it silently would be worse); closed (the wait is over and the store is about
to close: everything is refused, a vote too, and the caller says so). Work already tracked is never
refused half-way: a nested ``track()`` in the same task counts once and passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
from collections.abc import AsyncIterator

from bot.errors import ShuttingDownError


class Closing(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"  # new work refused, votes still taken, the work in flight finishing
    CLOSED = "closed"  # the store is closing: everything refused


class InFlight:
    """A count of the work in flight, and the gate that refuses new work once the bot is closing."""

    def __init__(self) -> None:
        self.state = Closing.OPEN
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # True inside tracked work (per task), so nested tracking counts it once and is never refused.
        self._inside: contextvars.ContextVar[bool] = contextvars.ContextVar("in_flight", default=False)

    @property
    def count(self) -> int:
        return self._count

    @property
    def closing(self) -> bool:
        """True from the moment ``drain`` begins."""
        return self.state is not Closing.OPEN

    def refuses(self, *, vote: bool = False) -> bool:
        """Whether ``track(vote=vote)`` would refuse new work here, now."""
        if self._inside.get():
            return False
        if vote:
            return self.state is Closing.CLOSED
        return self.state is not Closing.OPEN

    @contextlib.asynccontextmanager
    async def track(self, *, vote: bool = False, refusal: str | None = None) -> AsyncIterator[None]:
        """Count the block as work in flight; ``ShuttingDownError`` instead if closing refuses it (its
        text: ``refusal``, else what a quote or a vote is told)."""
        if self._inside.get():
            yield
            return
        if self.refuses(vote=vote):
            default = ShuttingDownError.VOTE if vote else ShuttingDownError.QUOTE
            raise ShuttingDownError(refusal or default)
        token = self._inside.set(True)
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inside.reset(token)
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Refuse new work, wait up to ``timeout`` seconds for the work in flight, then refuse everything;
        False if some work was still running."""
        self.state = Closing.DRAINING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            # A vote may begin between the wake-up and this task running again: look again each time.
            while self._count:
                await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return False
        finally:
            self.state = Closing.CLOSED  # no await between the last look and this: nothing slips in
        return True
