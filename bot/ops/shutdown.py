"""A bounded stop under a supervisor (systemd, Docker): the first SIGTERM starts a clean close, a
second one, or the bound passing, ends the process at once.

    guard = ShutdownGuard(settings.shutdown_timeout_seconds + CLOSE_GRACE_S)
    def on_signal(name):
        if guard.first(name):
            start_closing()

A clean close waits ``SHUTDOWN_TIMEOUT_SECONDS`` for replies in flight and then closes the model host,
the store and the gateway; the bound adds ``CLOSE_GRACE_S`` for those. Past it (a hung close) or on a
second signal (an impatient operator, ``docker stop`` after its own timeout) the process exits with
``EXIT_FORCED`` without waiting, so the supervisor never has to SIGKILL it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable

CLOSE_GRACE_S = 10.0  # after the replies' timeout: closing the host, the store and the gateway
EXIT_FORCED = 1  # a failure: the close did not finish
_log = logging.getLogger(__name__)


class ShutdownGuard:
    """Counts stop signals and arms the bound; ``force_exit`` is ``os._exit`` except in tests."""

    def __init__(self, bound_s: float, force_exit: Callable[[int], object] = os._exit):
        self.bound_s = bound_s
        self.force_exit = force_exit
        self.stopping = False
        self._timer: asyncio.TimerHandle | None = None

    def first(self, name: str) -> bool:
        """True for the first stop signal (the caller starts closing); a later one exits now."""
        if self.stopping:
            _log.warning("received %s again; exiting now without finishing replies in flight", name)
            self._exit()
            return False
        self.stopping = True
        self._timer = asyncio.get_running_loop().call_later(self.bound_s, self._too_late)
        return True

    def _too_late(self) -> None:
        _log.error("still closing %.0f s after the stop signal; exiting now", self.bound_s)
        self._exit()

    def _exit(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self.force_exit(EXIT_FORCED)

    def cancel(self) -> None:
        """The close finished in time: disarm the bound."""
        if self._timer is not None:
            self._timer.cancel()
