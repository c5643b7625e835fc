"""bot.retrain.progress: a run's updates are passed on at most every few seconds, the end always."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.retrain.progress import RunHandle, RunUpdate
from bot.storage.model_versions import RetrainRun


def a_run() -> RetrainRun:
    return RetrainRun(1, 111, 7, "running", None, 5, None, None, {}, datetime.now(timezone.utc), None)


async def test_updates_in_one_phase_go_out_at_most_every_few_seconds():
    sent: list[str] = []

    async def show(update: RunUpdate) -> None:
        sent.append(update.text)

    handle = RunHandle(a_run(), show, every_s=60.0)
    for step in range(10):
        await handle.report(RunUpdate(1, "training", f"step {step}"))
    await handle.report(RunUpdate(1, "scoring", "scoring"))  # a new phase shows at once
    await handle.report(RunUpdate(1, "scoring", "still scoring"))
    await handle.report(RunUpdate(1, "promoted", "done", final=True))  # the end always shows
    assert sent == ["step 0", "scoring", "done"]
    assert handle.latest.text == "done"


async def test_a_failing_callback_is_logged_and_the_run_goes_on(caplog):
    async def broken(update: RunUpdate) -> None:
        raise RuntimeError("the status message was deleted")

    handle = RunHandle(a_run(), broken, every_s=0.0)
    await handle.report(RunUpdate(1, "promoted", "done", final=True))
    assert handle.latest.text == "done" and handle.delivered == 0
    assert "could not show an update" in caplog.text


async def test_without_a_callback_the_latest_update_is_still_kept():
    handle = RunHandle(a_run(), None, every_s=0.0)
    await handle.report(RunUpdate(1, "training", "step 3"))
    assert handle.latest.text == "step 3"
