"""Fair use of the machine: the cooldown, the first-come queue, the cap on kept versions.

Pure rules first, then through the real ``Retrainer`` on a real store (a queued run is started by the end of
the one before it, with real child processes and a tiny model).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.retrain.fair_use import (
    RetrainCooldownError,
    RetrainQueue,
    Waiting,
    cooldown_left,
    describe_wait,
    versions_to_prune,
)
from bot.retrain.progress import RunUpdate
from bot.retrain.promotion import prune
from bot.storage.model_versions import ModelVersion, ModelVersions, RetrainRun
from tests.bot.retrain.test_retrainer import base_checkpoint, bot_parts, make_retrainer, store  # noqa: F401
from tests.helpers import ADMIN, GUILD, OTHER_GUILD

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def run_at(minutes_ago: float, status: str = "promoted") -> RetrainRun:
    started = NOW - timedelta(minutes=minutes_ago)
    return RetrainRun(1, GUILD, ADMIN, status, None, None, None, None, {}, started, started)


def version(vid: int, parent: int | None) -> ModelVersion:
    return ModelVersion(vid, GUILD, f"guild-{GUILD}/v{vid}.pt", parent, None, {}, {}, NOW)


def test_cooldown_counts_from_the_start_of_the_last_run():
    assert cooldown_left(None, NOW, 60) == 0
    assert cooldown_left(run_at(20), NOW, 60) == 40 * 60
    assert cooldown_left(run_at(20, "rejected"), NOW, 60) == 40 * 60  # a rejected run used the machine too
    assert cooldown_left(run_at(20, "interrupted"), NOW, 60) == 0  # the bot restarted under it
    assert cooldown_left(run_at(61), NOW, 60) == 0
    assert cooldown_left(run_at(1), NOW, 0) == 0
    assert describe_wait(40 * 60) == "40 min" and describe_wait(125 * 60) == "2 h 5 min"


def test_queue_is_first_come_with_one_place_per_server():
    queue = RetrainQueue()
    assert queue.add(Waiting(1, 10, 100)) == 1
    assert queue.add(Waiting(2, 20, 200)) == 2
    with pytest.raises(ValueError):
        queue.add(Waiting(1, 11, 100))  # the same server asking again keeps its one place
    assert queue.add(Waiting(3, 30, 300)) == 3
    assert queue.remove(2).guild_id == 2 and queue.position(3) == 2
    assert [queue.pop().guild_id, queue.pop().guild_id, queue.pop()] == [1, 3, None]


def test_prune_keeps_the_newest_and_never_the_serving_one_or_its_parent():
    chain = [version(1, None), version(2, 1), version(3, 2), version(4, 3), version(5, 4)]
    serving = chain[1]  # rolled back to v2: v2 and its parent v1 stay whatever their age
    doomed = versions_to_prune(chain, serving, keep=3, on_disk=lambda v: True)
    assert [v.id for v in doomed] == [3, 4]
    assert versions_to_prune(chain, chain[4], keep=2, on_disk=lambda v: True) == chain[:3]
    assert versions_to_prune(chain, chain[4], keep=5, on_disk=lambda v: True) == []
    gone = {1, 2}
    assert versions_to_prune(chain, chain[4], keep=2, on_disk=lambda v: v.id not in gone) == [chain[2]]


async def test_prune_removes_old_files_and_their_sidecars_on_disk(store, tmp_path: Path):  # noqa: F811
    versions = ModelVersions(store, tmp_path / "models")
    parent = None
    for number in range(1, 5):
        path = versions.models_dir / f"guild-{GUILD}/v{number}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        for name in (f"v{number}.pt", f"v{number}.loss.png", f"v{number}.replay.jsonl"):
            (path.parent / name).write_text("x")
        made = await versions.record_version(GUILD, None, f"guild-{GUILD}/v{number}.pt", parent, {}, {})
        parent = made.id
    removed = await prune(versions, GUILD, keep=2)
    assert [v.number for v in removed] == [1, 2]
    left = sorted(p.name for p in (versions.models_dir / f"guild-{GUILD}").iterdir())
    assert left == ["v3.loss.png", "v3.pt", "v3.replay.jsonl", "v4.loss.png", "v4.pt", "v4.replay.jsonl"]
    assert len(await versions.versions(GUILD)) == 4  # the rows stay, for the record


async def test_a_server_in_its_cooldown_is_refused_and_owners_are_not(store, bot_parts, base_checkpoint):  # noqa: F811
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, cooldown_minutes=60.0)
    _host, versions, _ = bot_parts
    run = await versions.start_run(GUILD, ADMIN, 5, max_running=1)
    await versions.finish_run(run.id, "rejected", "no", {})
    with pytest.raises(RetrainCooldownError, match="can start in 1 h\\."):
        await retrainer.request(GUILD, ADMIN, 5)
    handle = await retrainer.request(GUILD, ADMIN, 5, owner=True)  # a bot owner never waits
    await retrainer.cancel(GUILD)
    await asyncio.wait_for(handle.task, 60)


@pytest.mark.slow
async def test_a_full_machine_queues_the_next_server_and_starts_it_when_a_slot_frees(
    store,  # noqa: F811
    bot_parts,  # noqa: F811
    base_checkpoint,  # noqa: F811
):
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, max_concurrent=1, min_quotes=5)
    seen: dict[int, list[RunUpdate]] = {GUILD: [], OTHER_GUILD: []}

    def shower(guild: int):
        async def show(update: RunUpdate) -> None:
            seen[guild].append(update)

        return show

    first = await retrainer.request(GUILD, ADMIN, 5, shower(GUILD))
    assert not isinstance(first, int)
    assert await retrainer.request(OTHER_GUILD, ADMIN, 6, shower(OTHER_GUILD)) == 1  # its place in the queue
    assert retrainer.position(OTHER_GUILD) == 1
    with pytest.raises(Exception, match="already waiting, at position 1"):
        await retrainer.request(OTHER_GUILD, ADMIN, 6)
    await asyncio.wait_for(first.task, 90)
    for _ in range(200):  # the second starts by itself once the first ends
        if retrainer.active(OTHER_GUILD) is not None:
            break
        await asyncio.sleep(0.05)
    second = retrainer.active(OTHER_GUILD)
    assert second is not None and retrainer.position(OTHER_GUILD) is None
    final = await asyncio.wait_for(second.task, 90)
    assert final.final and seen[OTHER_GUILD][0].phase == "starting"
    assert seen[OTHER_GUILD][-1] is final


async def test_leaving_the_queue(store, bot_parts, base_checkpoint):  # noqa: F811
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, max_concurrent=1, min_quotes=5)
    first = await retrainer.request(GUILD, ADMIN, 5)
    assert await retrainer.request(OTHER_GUILD, ADMIN, 6) == 1
    assert retrainer.withdraw(OTHER_GUILD) and not retrainer.withdraw(OTHER_GUILD)
    await retrainer.cancel(GUILD)
    await asyncio.wait_for(first.task, 60)
    await asyncio.sleep(0.1)
    assert retrainer.active(OTHER_GUILD) is None  # it left: nothing of it starts


async def test_two_servers_asking_at_once_for_one_slot_get_a_run_and_a_place(
    store,  # noqa: F811
    bot_parts,  # noqa: F811
    base_checkpoint,  # noqa: F811
):
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, max_concurrent=1, min_quotes=5)
    got = await asyncio.gather(retrainer.request(GUILD, ADMIN, 5), retrainer.request(OTHER_GUILD, ADMIN, 6))
    assert sorted(type(g).__name__ for g in got) == ["RunHandle", "int"] and 1 in got
    assert retrainer.withdraw(OTHER_GUILD)
    handle = await retrainer.cancel(GUILD)
    await asyncio.wait_for(handle.task, 60)
