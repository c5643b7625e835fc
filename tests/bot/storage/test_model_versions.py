"""bot.storage.model_versions on both backends: runs (one per guild, a global limit), versions,
rollback."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.storage.model_versions import (
    ModelVersions,
    NothingToRollBackError,
    RetrainRefusedError,
    version_path,
)
from bot.storage.store import Store


@pytest.fixture
async def versions(store_target: Path | str, tmp_path: Path):
    store = await Store.open(store_target)
    yield ModelVersions(store, tmp_path / "models")
    await store.close()


async def test_one_running_run_per_guild(versions: ModelVersions):
    run = await versions.start_run(1, requested_by=7, channel_id=3, max_running=5)
    assert (run.status, run.guild_id, run.requested_by, run.parent_version_id) == ("running", 1, 7, None)
    with pytest.raises(RetrainRefusedError, match=rf"already running in this server \(run #{run.id}\)"):
        await versions.start_run(1, requested_by=8, channel_id=3, max_running=5)
    other = await versions.start_run(2, requested_by=8, channel_id=4, max_running=5)  # another guild may
    assert other.id != run.id
    assert await versions.finish_run(run.id, "rejected", "worse on the base text", {"base": 1.5})
    again = await versions.start_run(1, requested_by=8, channel_id=3, max_running=5)  # finished: free again
    assert again.status == "running"


async def test_concurrent_starts_in_one_guild_let_exactly_one_through(versions: ModelVersions):
    results = await asyncio.gather(
        *(versions.start_run(1, requested_by=u, channel_id=3, max_running=5) for u in range(6)),
        return_exceptions=True,
    )
    started = [r for r in results if not isinstance(r, BaseException)]
    assert len(started) == 1
    assert all(isinstance(r, RetrainRefusedError) for r in results if isinstance(r, BaseException))


async def test_global_limit_of_concurrent_runs(versions: ModelVersions):
    await versions.start_run(1, requested_by=None, channel_id=None, max_running=2)
    await versions.start_run(2, requested_by=None, channel_id=None, max_running=2)
    with pytest.raises(RetrainRefusedError, match="2 retrains are running on this bot already"):
        await versions.start_run(3, requested_by=None, channel_id=None, max_running=2)


async def test_finish_run_records_status_figures_and_only_once(versions: ModelVersions):
    run = await versions.start_run(1, requested_by=7, channel_id=3, max_running=1)
    await versions.set_status_message(run.id, channel_id=3, message_id=99)
    assert await versions.finish_run(run.id, "failed", "the training process was killed", {"rc": -9})
    done = await versions.run(run.id)
    assert done is not None
    assert (done.status, done.detail, done.figures, done.status_message_id) == (
        "failed",
        "the training process was killed",
        {"rc": -9},
        99,
    )
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert not await versions.finish_run(run.id, "promoted", "too late", {})  # already finished
    assert (await versions.run(run.id)).status == "failed"
    with pytest.raises(ValueError, match="not 'running'"):
        await versions.finish_run(run.id, "running", "", {})
    with pytest.raises(ValueError, match="finite JSON"):
        await versions.finish_run(run.id, "failed", "", {"x": float("nan")})


async def test_start_up_marks_running_runs_interrupted(versions: ModelVersions):
    finished = await versions.start_run(1, requested_by=7, channel_id=3, max_running=5)
    await versions.finish_run(finished.id, "promoted", "ok", {})
    running = await versions.start_run(1, requested_by=7, channel_id=3, max_running=5)
    await versions.set_status_message(running.id, 3, 42)
    other = await versions.start_run(2, requested_by=7, channel_id=4, max_running=5)
    marked = await versions.interrupt_running()
    assert [r.id for r in marked] == [running.id, other.id]
    assert marked[0].status_message_id == 42  # so the status message can say what happened
    assert (await versions.run(running.id)).status == "interrupted"
    assert "restarted" in (await versions.run(running.id)).detail
    assert (await versions.run(finished.id)).status == "promoted"  # finished runs are left alone
    assert await versions.interrupt_running() == []
    assert not await versions.finish_run(running.id, "promoted", "the old task's late word", {})


async def test_two_processes_never_take_the_same_retrain_slot(store_target: Path | str, tmp_path: Path):
    stores = [await Store.open(store_target, busy_timeout=20) for _ in range(2)]  # two processes
    try:
        sides = [ModelVersions(store, tmp_path / "models", owner=f"p{i}") for i, store in enumerate(stores)]
        results = await asyncio.gather(
            *(sides[g % 2].start_run(g, requested_by=7, channel_id=3, max_running=2) for g in range(1, 11)),
            return_exceptions=True,
        )
        started = [r for r in results if not isinstance(r, BaseException)]
        assert len(started) == 2  # the slots: two at once, across both processes
        assert all(isinstance(r, RetrainRefusedError) for r in results if isinstance(r, BaseException))
    finally:
        for store in stores:
            await store.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def test_start_up_leaves_another_live_process_run_alone(store_target: Path | str, tmp_path: Path):
    clock = Clock()
    store = await Store.open(store_target, clock=clock)
    try:
        mine = ModelVersions(store, tmp_path / "models", owner="host-a/shards 0,1")
        theirs = ModelVersions(store, tmp_path / "models", owner="host-b/shards 2,3")
        my_run = await mine.start_run(1, requested_by=7, channel_id=3, max_running=5)
        their_run = await theirs.start_run(2, requested_by=7, channel_id=4, max_running=5)
        assert (await mine.run(my_run.id)).status == "running"
        clock.now += timedelta(minutes=2)
        assert await theirs.heartbeat(their_run.id)  # they are alive
        assert not await theirs.heartbeat(my_run.id)  # a process beats only for its own runs
        clock.now += timedelta(minutes=2)  # mine last beat 4 minutes ago, theirs 2
        marked = await mine.interrupt_running(stale_after=timedelta(minutes=3))
        assert [r.id for r in marked] == [my_run.id]
        assert (await theirs.run(their_run.id)).status == "running"
        clock.now += timedelta(minutes=5)  # their process died: no heartbeat for 7 minutes
        marked = await mine.interrupt_running(stale_after=timedelta(minutes=3))
        assert [r.id for r in marked] == [their_run.id]
        assert (await theirs.run(their_run.id)).status == "interrupted"
        assert not await theirs.heartbeat(their_run.id)  # a late beat does not revive it
        # Before a new run, only stale runs are swept: never this process's live one.
        live = await mine.start_run(3, requested_by=7, channel_id=3, max_running=5)
        dead = await theirs.start_run(4, requested_by=7, channel_id=3, max_running=5)
        clock.now += timedelta(minutes=2)
        await mine.heartbeat(live.id)
        clock.now += timedelta(minutes=2)  # theirs silent for 4 minutes, mine beat 2 minutes ago
        swept = await mine.interrupt_running(stale_after=timedelta(minutes=3), own=False)
        assert [r.id for r in swept] == [dead.id] and (await mine.run(live.id)).status == "running"
    finally:
        await store.close()


async def test_versions_lineage_and_rollback_to_the_bundled_model(versions: ModelVersions):
    assert await versions.current(1) is None  # bundled
    v1 = await versions.record_version(1, None, version_path(1, 1), None, {"base": 1.6}, {"favoured": 3})
    run = await versions.start_run(1, requested_by=7, channel_id=3, max_running=1)
    assert run.parent_version_id == v1.id  # a run starts from what the guild serves
    v2 = await versions.record_version(1, run.id, version_path(1, 2), v1.id, {"base": 1.5}, {"favoured": 9})
    assert (v2.number, v2.path, v2.parent_id, v2.run_id) == (2, "guild-1/v2.pt", v1.id, run.id)
    assert v2.scores == {"base": 1.5} and v2.trained_on == {"favoured": 9}
    assert versions.file_of(v2) == versions.models_dir / "guild-1" / "v2.pt"
    assert (await versions.current(1)).id == v2.id
    assert [v.id for v in await versions.lineage(1)] == [v2.id, v1.id]
    assert [v.id for v in await versions.versions(1)] == [v1.id, v2.id]
    assert await versions.current(2) is None  # another guild is untouched
    assert (await versions.rollback(1)).id == v1.id
    assert (await versions.current(1)).id == v1.id
    assert await versions.rollback(1) is None  # v1's parent: the bundled model
    assert await versions.current(1) is None
    with pytest.raises(NothingToRollBackError, match="already uses the bundled model"):
        await versions.rollback(1)
    assert len(await versions.versions(1)) == 2  # rollback forgets nothing


async def test_next_number_skips_recorded_versions_and_stray_files(versions: ModelVersions):
    assert await versions.next_number(1) == 1
    await versions.record_version(1, None, version_path(1, 1), None, {}, {})
    assert await versions.next_number(1) == 2
    folder = versions.models_dir / "guild-1"
    folder.mkdir(parents=True)
    (folder / "v4.pt").write_bytes(b"left by a crash between the move and the insert")
    assert await versions.next_number(1) == 5
    assert await versions.next_number(2) == 1
