"""One retrain of a server's model: gather its quotes, fine-tune in a child process, judge, then promote.

    retrainer = Retrainer(RetrainConfig.from_settings(settings), store, versions, guild_models)
    await retrainer.start_up()                       # runs left 'running' by a dead bot -> 'interrupted'
    handle = await retrainer.start(guild_id, requested_by=user_id, channel_id=channel_id, on_update=show)
    final = await handle.task                        # a RunUpdate: promoted, rejected, failed or cancelled
    await retrainer.cancel(guild_id)                 # stops the child; the run ends 'cancelled'
    started = await retrainer.request(guild_id, ...)  # !retrain: a RunHandle, or its place in the queue

``request`` adds the fair-use rules (``bot/retrain/fair_use.py``): a per-server cooldown, and a first-come
queue when ``max_concurrent`` runs are going (one place per server; each waiting request's status
message shows its position, and the next starts by itself when a run ends).

A run reads the server's favoured quotes (``min_votes`` votes or more) and admin-added quotes and refuses
when there are fewer than ``min_quotes``. ``python -m training finetune --db --guild --min-votes`` then
trains from the server's current model (or the bundled one), replaying a share of its base text (the
base corpus when it is on this machine, else the current model's own samples, cached beside it), as a
low-priority one-thread child (``bot/retrain/child_process.py``) writing into its own folder under
``<models>/.runs/``; its JSON progress lines become ``RunUpdate``s, passed on at most every
``progress_every_s`` (and whenever the phase changes). A live run beats a heartbeat into the store every
``heartbeat_s``; at start-up a process interrupts only its own runs and those whose heartbeat stopped
``stale_after_s`` ago, and removes only those runs' folders (several processes may share the models folder).
``python -m training.judge`` scores the candidate
against the current model and ``training.judge.decide`` applies the margin and the loop target.
Promotion (``bot/retrain/promotion.py``) moves the file into ``<models>/guild-<id>/v<n>.pt`` (an atomic
rename), records the version and points the server at it, loads it in the model host, and removes the
files of versions beyond ``keep_versions``. Whatever ends a run (a rejection, a crash,
the time limit, a cancel), its folder is removed, so no partial checkpoint is left, and the model that
served before keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from bot.errors import QuotebotError, log_unexpected
from bot.ops import metrics
from bot.retrain.config import RetrainConfig
from bot.retrain.fair_use import RetrainCooldownError, RetrainQueue, Waiting, cooldown_left, describe_wait
from bot.retrain.preview import plan_for, preview_text
from bot.retrain.progress import OnUpdate, RunHandle, RunUpdate
from bot.retrain.promotion import promote, prune
from bot.retrain.steps import RunEnded, run_child
from bot.retrain.texts import finished_text, progress_text, queued_text, started_text
from bot.serving.guild_models import GuildModels
from bot.storage.db import is_url, split_password
from bot.storage.exclusions import TrainingExclusions
from bot.storage.model_versions import (
    ModelVersion,
    ModelVersions,
    RetrainRefusedError,
    RetrainRun,
)
from bot.storage.store import Store
from model.vocab import Vocab
from training.metrics import replay_cache_path_for
from training.verdict import decide

GUARD_SHARE = 0.75  # of the score margin: finetune's own drift guard, measured on other base quotes
RUNS_DIR = ".runs"  # under the models folder: one working folder per run, removed when it ends
CANCEL_AGAIN_S = 0.5  # close(): how long a cancelled run has before it is cancelled again
_log = logging.getLogger(__name__)


class TooFewQuotesError(QuotebotError):
    """The server has not favoured or added enough quotes to learn from."""


class NoRunningRetrainError(QuotebotError):
    """There is no retrain running in this server (to cancel)."""


class Retrainer:
    """Starts, tracks and cancels retrain runs; at most one per server and ``max_concurrent`` in all."""

    def __init__(
        self, config: RetrainConfig, store: Store, versions: ModelVersions, guild_models: GuildModels | None
    ):
        self.config = config
        self.store = store
        self.versions = versions
        self.guild_models = guild_models
        self._runs: dict[int, RunHandle] = {}
        # The children read the store themselves: a file path, or the URL with its password apart.
        self._child_env: dict[str, str] = {}
        if is_url(str(config.db_path)):
            self._db_arg, password = split_password(str(config.db_path))
            if password is not None:
                self._child_env["PGPASSWORD"] = password
        else:
            self._db_arg = str(Path(config.db_path).resolve())
        self.queue = RetrainQueue()
        self._starting = 0  # requests between their slot check and their run's record
        self._next_tasks: set[asyncio.Task[None]] = set()

    async def start_up(self) -> list[RetrainRun]:
        """Mark runs that died with a process as interrupted, and remove those runs' working folders.

        Only this process's own runs (by owner name) and runs whose owner stopped beating long ago: another
        process sharing the store and the models folder keeps its live runs and their folders.
        """
        stale_after = timedelta(seconds=self.config.stale_after_s)
        interrupted = await self.versions.interrupt_running(stale_after)
        for run in interrupted:
            shutil.rmtree(self._work_dir(run.id), ignore_errors=True)
        return interrupted

    def _work_dir(self, run_id: int) -> Path:
        return self.config.models_dir / RUNS_DIR / f"run-{run_id}"

    async def _beat(self, run_id: int) -> None:
        """Refresh the run's heartbeat until cancelled; a failed beat is logged and tried again."""
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self.versions.heartbeat(run_id)
            except Exception as exc:
                _log.warning("retrain %d: heartbeat not recorded: %s", run_id, exc)

    def active(self, guild_id: int) -> RunHandle | None:
        """The server's run in progress in this process, if any."""
        return self._runs.get(guild_id)

    async def gather(self, guild_id: int) -> dict[str, int]:
        """Count the quotes a run would learn from; ``TooFewQuotesError`` when there are too few."""
        quotes = await self.store.favoured_and_source_quotes(guild_id, self.config.min_votes)
        counts = {
            "favoured": sum(q.kind == "favoured" for q in quotes),
            "source": sum(q.kind == "source" for q in quotes),
        }
        total, needed, votes = len(quotes), self.config.min_quotes, self.config.min_votes
        if total < needed:
            raise TooFewQuotesError(
                f"not enough quotes to learn from yet: this server has {counts['favoured']} favoured "
                f"(with at least {votes} vote{'s' if votes != 1 else ''}) and {counts['source']} added "
                f"quote{'s' if counts['source'] != 1 else ''}, and a retrain needs {needed} in all."
            )
        return counts

    async def request(
        self,
        guild_id: int,
        requested_by: int | None,
        channel_id: int | None,
        on_update: OnUpdate | None = None,
        *,
        status_message_id: int | None = None,
        owner: bool = False,
    ) -> RunHandle | int:
        """``!retrain``: start a run now, or queue it when every slot is taken (its queue position).

        Refused (``QuotebotError``) while the server runs or waits, within its cooldown (bot owners never
        wait), or with too few quotes.
        """
        position = self.queue.position(guild_id)
        if position is not None:
            raise RetrainRefusedError(f"this server's retrain is already waiting, at position {position}.")
        if guild_id in self._runs:
            run = self._runs[guild_id].run
            raise RetrainRefusedError(f"a retrain is already running in this server (run #{run.id}).")
        if not owner:
            latest = await self.versions.latest_run(guild_id)
            now = datetime.fromisoformat(self.store.now())
            left = cooldown_left(latest, now, self.config.cooldown_minutes)
            if left > 0:
                raise RetrainCooldownError(
                    f"this server retrained less than {self.config.cooldown_minutes:g} minutes ago; "
                    f"the next retrain can start in {describe_wait(left)}."
                )
        await self.gather(guild_id)
        if self._free_slots() > 0:
            self._starting += 1  # held from here to the run's record, so two requests cannot take one slot
            try:
                return await self.start(
                    guild_id, requested_by, channel_id, on_update, status_message_id=status_message_id
                )
            finally:
                self._starting -= 1
        waiting = Waiting(guild_id, requested_by, channel_id, status_message_id, on_update)
        return self.queue.add(waiting)

    def _free_slots(self) -> int:
        return self.config.max_concurrent - len(self._runs) - self._starting

    async def preview(self, guild_id: int, vocab: Vocab) -> str:
        """``!retrain preview``: what the next run would learn from (``bot/retrain/preview.py``); ``vocab``
        is the server's current model's."""
        quotes = await self.store.favoured_and_source_quotes(guild_id, self.config.min_votes)
        excluded = await TrainingExclusions(self.store).count(guild_id)
        latest = await self.versions.latest_run(guild_id)
        wait = cooldown_left(latest, datetime.fromisoformat(self.store.now()), self.config.cooldown_minutes)
        return preview_text(quotes, excluded, self.config.min_quotes, plan_for(quotes, vocab), wait)

    def position(self, guild_id: int) -> int | None:
        """The server's place in the queue (1: next), or None when it is not waiting."""
        return self.queue.position(guild_id)

    def withdraw(self, guild_id: int) -> bool:
        """Take the server's waiting request out of the queue; False when it was not waiting."""
        removed = self.queue.remove(guild_id) is not None
        if removed:
            self._spawn(self._tell_positions())
        return removed

    async def start(
        self,
        guild_id: int,
        requested_by: int | None,
        channel_id: int | None,
        on_update: OnUpdate | None = None,
        *,
        status_message_id: int | None = None,
    ) -> RunHandle:
        """Check, record and start a run; refusals are ``QuotebotError``s with a reason for people."""
        if guild_id in self._runs:
            run = self._runs[guild_id].run
            raise RetrainRefusedError(f"a retrain is already running in this server (run #{run.id}).")
        counts = await self.gather(guild_id)
        # A run whose process died without a restart (a container replaced under a new host name) would
        # hold its server and a slot for ever: any start sweeps such stale runs first.
        stale = await self.versions.interrupt_running(timedelta(seconds=self.config.stale_after_s), own=False)
        for dead in stale:
            shutil.rmtree(self._work_dir(dead.id), ignore_errors=True)
        run = await self.versions.start_run(guild_id, requested_by, channel_id, self.config.max_concurrent)
        if status_message_id is not None and channel_id is not None:
            await self.versions.set_status_message(run.id, channel_id, status_message_id)
        handle = RunHandle(run, on_update, self.config.progress_every_s)
        self._runs[guild_id] = handle
        handle.task = asyncio.create_task(self._run(handle, counts), name=f"retrain-{run.id}")
        return handle

    async def cancel(self, guild_id: int, by: int | None = None) -> RunHandle:
        """Stop the server's run: its child is terminated and the run ends 'cancelled'."""
        handle = self._runs.get(guild_id)
        if handle is None:
            raise NoRunningRetrainError("there is no retrain running in this server.")
        handle.cancelled, handle.cancelled_by = True, by
        if handle.child is not None:
            await handle.child.stop()
        return handle

    async def close(self) -> None:
        """Stop every run without writing to the store (it may be closed): they become 'interrupted' at the
        next start-up."""
        self.queue.clear()  # nothing of theirs had started
        pending = {handle.task for handle in self._runs.values() if handle.task is not None}
        pending |= set(self._next_tasks)
        # Each run kills its child on the way out. A cancel can be lost (Python 3.11's asyncio.wait_for
        # returns a result that lands with it, and the run would go on to promote): cancel until done.
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)

    # -- one run ---------------------------------------------------------------------------------------------

    async def _run(self, handle: RunHandle, counts: dict[str, int]) -> RunUpdate:
        run = handle.run
        work = self._work_dir(run.id)
        beat = asyncio.create_task(self._beat(run.id), name=f"retrain-{run.id}-heartbeat")
        deadline = asyncio.get_running_loop().time() + self.config.time_limit_s
        figures: dict = dict(counts)
        version = None
        try:
            try:
                await handle.report(RunUpdate(run.id, "starting", started_text(run, counts, self.config)))
                version = await self._train_judge_promote(handle, work, deadline, figures)
                status, reason = "promoted", ""
            except RunEnded as ended:
                status, reason = ended.status, ended.text
            except Exception as exc:  # a bug: this run fails, the bot carries on
                error_id = log_unexpected(_log, exc, f"retrain {run.id}")
                status, reason = "failed", f"an unexpected error ended it (error id `{error_id}`)"
            metrics.RETRAIN_RUNS.labels(status).inc()
            text = finished_text(run, status, figures, version, reason)
            shutil.rmtree(work, ignore_errors=True)  # before anyone hears the end: nothing partial is left
            try:
                if not await self.versions.finish_run(run.id, status, text, figures):
                    _log.warning("retrain %d was no longer running when it ended %s", run.id, status)
            except Exception as exc:  # the store failed: the people waiting still hear how it ended
                log_unexpected(_log, exc, f"recording the end of retrain {run.id}")
            update = RunUpdate(run.id, status, text, final=True, figures=figures, version=version)
            await handle.report(update)
            return update
        finally:
            beat.cancel()
            if handle.child is not None:
                await handle.child.kill()  # a child never outlives its run
            shutil.rmtree(work, ignore_errors=True)
            self._runs.pop(run.guild_id, None)
            if len(self.queue):
                self._spawn(self._start_next())

    # -- the queue -------------------------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine, name="retrain-queue")
        self._next_tasks.add(task)
        task.add_done_callback(self._next_tasks.discard)

    async def _start_next(self) -> None:
        """Start waiting requests, while slots are free; tell the rest their place."""
        while self._free_slots() > 0 and (waiting := self.queue.pop()) is not None:
            self._starting += 1
            try:
                await self.start(
                    waiting.guild_id, waiting.requested_by, waiting.channel_id, waiting.on_update,
                    status_message_id=waiting.status_message_id,
                )  # fmt: skip
            except QuotebotError as exc:  # e.g. quotes excluded while it waited
                await self._tell(waiting, RunUpdate(0, "refused", f"No retrain: {exc}", final=True))
            except Exception as exc:
                log_unexpected(_log, exc, f"starting the queued retrain of server {waiting.guild_id}")
            finally:
                self._starting -= 1
        await self._tell_positions()

    async def _tell_positions(self) -> None:
        for position, waiting in enumerate(self.queue.entries(), start=1):
            await self._tell(waiting, RunUpdate(0, "queued", queued_text(position, len(self.queue))))

    @staticmethod
    async def _tell(waiting: Waiting, update: RunUpdate) -> None:
        if waiting.on_update is None:
            return
        try:
            await waiting.on_update(update)
        except Exception:  # a failed message edit must not stop the queue
            _log.warning("could not update the status of server %d's queued retrain", waiting.guild_id)

    async def _train_judge_promote(
        self, handle: RunHandle, work: Path, deadline: float, figures: dict
    ) -> ModelVersion:
        run, config = handle.run, self.config
        parent = await self.versions.version(run.parent_version_id) if run.parent_version_id else None
        parent_path = self.versions.file_of(parent) if parent else config.bundled_model
        work.mkdir(parents=True, exist_ok=True)
        candidate = work / "candidate.pt"
        corpus = ["--db", self._db_arg, "--guild", str(run.guild_id)]
        corpus += ["--min-votes", str(config.min_votes)]
        base = ["--replay-corpus", str(config.base_corpus)] if config.base_corpus else []
        base += ["--replay-cache", str(self.replay_cache(parent_path, parent))]
        base += ["--replay-samples", str(config.replay_samples)]
        # Keep only checkpoints well inside the judge's margin, so the model kept is one it can promote.
        guard = config.score_margin * GUARD_SHARE if 0 < config.score_margin < float("inf") else 0.0
        base += ["--base-margin", f"{guard:g}"]
        finetune = [config.python, "-m", "training", "finetune", *corpus, "--from", str(parent_path)]
        finetune += ["--out", str(candidate), "--minutes", f"{config.minutes:g}", "--threads", "1"]
        finetune += ["--progress", "jsonl", "--seed", str(run.id), *base, *config.finetune_args]
        await self._child(handle, finetune, deadline, "training", figures)
        if not candidate.is_file():
            raise RunEnded("failed", "the training process ended without writing a model")
        await handle.report(RunUpdate(run.id, "scoring", progress_text(run, "scoring", {})))
        base = ["--base-corpus", str(config.base_corpus)] if config.base_corpus else []
        base += ["--replay-cache", str(self.replay_cache(parent_path, parent))]
        base += ["--replay-samples", str(config.replay_samples)]
        judge = [config.python, "-m", "training.judge", "--candidate", str(candidate), "--current"]
        judge += [str(parent_path), *corpus, "--max-chars", str(config.max_quote_chars), "--threads", "1"]
        judged = await self._child(handle, [*judge, *base, "--json"], deadline, "scoring", figures)
        if judged is None:
            raise RunEnded("failed", "the scoring process gave no figures")
        figures.update({k: v for k, v in judged.items() if k != "event"})
        verdict = decide(figures, config.score_margin, config.loop_target)
        figures["reasons"] = verdict.reasons
        if handle.cancelled:
            raise RunEnded("cancelled", "cancelled")
        if not verdict.promote:
            raise RunEnded("rejected", "; ".join(verdict.reasons))
        version = await promote(self.versions, self.guild_models, run, parent, candidate, figures)
        await prune(self.versions, run.guild_id, config.keep_versions)
        return version

    def replay_cache(self, parent_path: Path, parent: ModelVersion | None) -> Path:
        """Where the parent's samples are cached (used when its base corpus is not here): beside a
        version's file; for the bundled model, in the models folder (the repository may be read-only)."""
        if parent is not None:
            return replay_cache_path_for(parent_path)
        return self.config.models_dir / "bundled" / replay_cache_path_for(parent_path).name

    async def _child(
        self, handle: RunHandle, argv: list[str], deadline: float, phase: str, figures: dict
    ) -> dict | None:
        return await run_child(
            handle, argv, deadline, phase, figures, env=self._child_env, time_limit_s=self.config.time_limit_s
        )
