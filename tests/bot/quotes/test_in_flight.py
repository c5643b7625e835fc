"""bot.quotes.in_flight: the gate the bot's close drains: new work refused, votes taken until the end."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import ShuttingDownError
from bot.quotes.in_flight import Closing, InFlight


async def hold(work: InFlight, release: asyncio.Event, *, vote: bool = False) -> None:
    async with work.track(vote=vote):
        await release.wait()


async def test_drain_waits_for_the_work_in_flight_and_refuses_new_work_meanwhile():
    work, release = InFlight(), asyncio.Event()
    held = asyncio.create_task(hold(work, release))
    await asyncio.sleep(0)
    assert work.count == 1
    draining = asyncio.create_task(work.drain(10))
    await asyncio.sleep(0)
    assert work.state is Closing.DRAINING and not draining.done()
    with pytest.raises(ShuttingDownError, match="new quote"):
        async with work.track():
            pass
    with pytest.raises(ShuttingDownError, match="try that again"):
        async with work.track(refusal=ShuttingDownError.OTHER):
            pass
    release.set()
    assert await draining is True
    await held
    assert work.state is Closing.CLOSED and work.count == 0


async def test_a_vote_is_still_counted_while_draining_and_waited_for():
    work, first, vote_release = InFlight(), asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(hold(work, first))
    await asyncio.sleep(0)
    draining = asyncio.create_task(work.drain(10))
    await asyncio.sleep(0)
    vote = asyncio.create_task(hold(work, vote_release, vote=True))  # taken: the store is still open
    await asyncio.sleep(0)
    assert work.count == 2
    first.set()
    await held
    await asyncio.sleep(0.01)
    assert not draining.done()  # the vote is work in flight too
    vote_release.set()
    assert await draining is True
    await vote


async def test_a_vote_that_begins_as_the_last_work_ends_is_waited_for():
    """The idle event is set, then a vote begins before the drain's task runs again: it looks again."""
    work, first, vote_release = InFlight(), asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(hold(work, first))
    await asyncio.sleep(0)
    draining = asyncio.create_task(work.drain(10))
    await asyncio.sleep(0)
    first.set()
    vote = asyncio.create_task(hold(work, vote_release, vote=True))
    await held  # the count touched 0 and woke the drain; the vote was scheduled first
    await asyncio.sleep(0.01)
    assert work.count == 1 and not draining.done()
    vote_release.set()
    assert await draining is True
    await vote


async def test_after_the_drain_everything_is_refused_votes_too():
    work = InFlight()
    assert await work.drain(1) is True
    assert work.refuses(vote=True) and work.refuses()
    with pytest.raises(ShuttingDownError, match="⭐ again"):
        async with work.track(vote=True):
            pass


async def test_work_already_in_flight_is_never_refused_half_way():
    work, ready, go_on = InFlight(), asyncio.Event(), asyncio.Event()
    inner: list[str] = []

    async def request() -> None:
        async with work.track():
            ready.set()
            await go_on.wait()
            async with work.track():  # e.g. the quote inside a command: the same request, counted once
                inner.append(f"inside, {work.count} in flight")

    task = asyncio.create_task(request())
    await ready.wait()
    draining = asyncio.create_task(work.drain(10))
    await asyncio.sleep(0)
    go_on.set()
    await task
    assert inner == ["inside, 1 in flight"] and await draining is True


async def test_drain_gives_up_after_its_timeout_and_closes_anyway():
    work, release = InFlight(), asyncio.Event()
    held = asyncio.create_task(hold(work, release))
    await asyncio.sleep(0)
    assert await work.drain(0.05) is False
    assert work.state is Closing.CLOSED and work.refuses(vote=True)
    release.set()
    await held
