"""One child process of a retrain run, to its end: its progress lines become updates, its failure a
``RunEnded`` with a reason members may read (details, such as paths in its error output, go to the log
under an error id)."""

from __future__ import annotations

import logging

from bot.errors import new_error_id
from bot.retrain.child_process import Child, ChildTimeout, describe_exit
from bot.retrain.progress import RunHandle, RunUpdate
from bot.retrain.texts import progress_text

_log = logging.getLogger(__name__)


class RunEnded(Exception):
    """Ends a run early with a status and a line for people (inside ``Retrainer``)."""

    def __init__(self, status: str, text: str):
        self.status, self.text = status, text
        super().__init__(text)


async def run_child(
    handle: RunHandle,
    argv: list[str],
    deadline: float,
    phase: str,
    figures: dict,
    *,
    env: dict[str, str],
    time_limit_s: float,
) -> dict | None:
    """Run one child to its end; its last ``judged`` event (if any). ``RunEnded`` unless it succeeded."""
    if handle.cancelled:
        raise RunEnded("cancelled", "cancelled")
    child = handle.child = await Child.start(argv, env=env)
    judged = None
    try:
        async for event in child.events(deadline):
            kind = event.get("event")
            if kind == "judged":
                judged = event
            elif kind in ("progress", "val"):
                figures.update({f"last_{k}": v for k, v in event.items() if k != "event"})
                text = progress_text(handle.run, phase, event)
                await handle.report(RunUpdate(handle.run.id, phase, text))
        code = await child.finish(deadline)
    except ChildTimeout:
        minutes = time_limit_s / 60
        raise RunEnded(
            "failed", f"it ran over the time limit of {minutes:g} minutes and was stopped"
        ) from None
    finally:
        if child.process.returncode is None:  # cancelled (the bot is closing): it must not outlive us
            await child.kill()
        handle.child = None
    if handle.cancelled:
        raise RunEnded("cancelled", "cancelled")
    if code != 0:
        figures[f"{phase}_exit"] = describe_exit(code)
        what = "training" if phase == "training" else "scoring"
        if code < 0:
            raise RunEnded("failed", f"the {what} process was {describe_exit(code)}")
        # Its stderr names files and folders of this machine: the log gets it, members an id.
        error_id = new_error_id()
        _log.error(
            "retrain %d: the %s process stopped (%s), error id %s; %s; its last lines:\n%s",
            handle.run.id, what, describe_exit(code), error_id, child.error_line() or "no error line",
            "\n".join(child.stderr_tail),
        )  # fmt: skip
        raise RunEnded("failed", f"the {what} process stopped ({describe_exit(code)}, error id `{error_id}`)")
    return judged
