"""bot.ops.shutdown: the first stop signal closes cleanly, a second one or the bound exits at once."""

from __future__ import annotations

import asyncio

from bot.ops.shutdown import EXIT_FORCED, ShutdownGuard


async def test_a_second_signal_exits_at_once():
    exits: list[int] = []
    guard = ShutdownGuard(60.0, force_exit=exits.append)
    assert guard.first("SIGTERM") is True and exits == []
    assert guard.first("SIGTERM") is False
    assert exits == [EXIT_FORCED]
    guard.cancel()


async def test_the_bound_exits_when_the_close_hangs_and_not_when_it_finished():
    exits: list[int] = []
    hung = ShutdownGuard(0.05, force_exit=exits.append)
    hung.first("SIGTERM")
    await asyncio.sleep(0.2)
    assert exits == [EXIT_FORCED]

    finished = ShutdownGuard(0.05, force_exit=exits.append)
    finished.first("SIGTERM")
    finished.cancel()  # the close finished in time
    await asyncio.sleep(0.2)
    assert exits == [EXIT_FORCED]  # no second exit
