"""One retrain of a server's model: gather its quotes, fine-tune in a child process, judge, then promote.

    retrainer = Retrainer(RetrainConfig.from_settings(settings), store, versions, guild_models)
    await retrainer.start_up()                       # runs left 'running' by a dead bot -> 'interrupted'
    handle = await retrainer.start(guild_id, requested_by=user_id, channel_id=channel_id, on_update=show)
    final = await handle.task                        # a RunUpdate: promoted, rejected, failed or cancelled
    await retrainer.cancel(guild_id)                 # stops the child; the run ends 'cancelled'

A run reads the server's favoured quotes (``min_votes`` votes or more) and admin-added quotes and refuses
when there are fewer than ``min_quotes``. ``python -m training finetune --db --guild --min-votes`` then
trains from the server's current model (or the bundled one), replaying a share of its base text (the
base corpus when it is on this machine, else the current model's own samples, cached beside it), as a
low-priority one-thread child (``bot/retrain/child_process.py``) writing into its own folder under
``<models>/.runs/``; its JSON progress lines become ``RunUpdate``s, passed on at most every
``progress_every_s`` (and whenever the phase changes). ``python -m training.judge`` scores the candidate
against the current model and ``training.judge.decide`` applies the margin and the loop target.
Promotion moves the file into ``<models>/guild-<id>/v<n>.pt`` (an atomic rename), records the version
and points the server at it, then loads it in the model host. Whatever ends a run (a rejection, a crash,
the time limit, a cancel), its folder is removed, so no partial checkpoint is left, and the model that
served before keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.errors import QuotebotError, log_unexpected
from bot.retrain.child_process import Child, ChildTimeout, describe_exit
from bot.retrain.progress import OnUpdate, RunHandle, RunUpdate
from bot.retrain.texts import finished_text, progress_text, started_text
from bot.serving.guild_models import GuildModels
from bot.settings import Settings
from bot.storage.model_versions import (
    ModelVersion,
    ModelVersions,
    RetrainRefusedError,
    RetrainRun,
    version_path,
)
from bot.storage.store import Store
from training.metrics import metrics_path_for, plot_path_for, replay_cache_path_for
from training.verdict import decide

RUNS_DIR = ".runs"  # under the models folder: one working folder per run, removed when it ends
_log = logging.getLogger(__name__)


class TooFewQuotesError(QuotebotError):
    """The server has not favoured or added enough quotes to learn from."""


class NoRunningRetrainError(QuotebotError):
    """There is no retrain running in this server (to cancel)."""


class RunEnded(Exception):
    """Ends a run early with a status and a line for people (inside ``Retrainer``)."""

    def __init__(self, status: str, text: str):
        self.status, self.text = status, text
        super().__init__(text)


@dataclass(frozen=True)
class RetrainConfig:
    """What a retrain needs to know; ``from_settings`` fills it from the bot's settings."""

    models_dir: Path
    db_path: Path
    bundled_model: Path
    min_votes: int = 1
    min_quotes: int = 20
    minutes: float = 10.0  # the training budget handed to finetune
    time_limit_s: float = 1200.0  # the whole run, both children; killed past it
    max_concurrent: int = 1
    score_margin: float = 0.02
    loop_target: float = 0.1
    base_corpus: Path | None = None
    replay_samples: int = 2000  # drawn from the current model when its base corpus is not here
    max_quote_chars: int = 400  # the loop test's length cap: what the bot serves
    progress_every_s: float = 5.0
    finetune_args: tuple[str, ...] = ()  # extra finetune options (tests: a small batch)
    python: str = sys.executable

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RetrainConfig:
        values = {
            "models_dir": settings.models_dir,
            "db_path": settings.db_path,
            "bundled_model": settings.model_path,
            "min_votes": settings.retrain_min_votes,
            "min_quotes": settings.retrain_min_quotes,
            "minutes": settings.retrain_minutes,
            "time_limit_s": settings.retrain_time_limit_minutes * 60.0,
            "max_concurrent": settings.retrain_max_concurrent,
            "score_margin": settings.retrain_score_margin,
            "loop_target": settings.retrain_loop_target,
            "base_corpus": settings.retrain_base_corpus,
            "replay_samples": settings.retrain_replay_samples,
            "max_quote_chars": settings.max_quote_chars,
            **overrides,
        }
        return cls(**values)


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

    async def start_up(self) -> list[RetrainRun]:
        """Mark runs a previous process left running as interrupted, and remove their working folders."""
        interrupted = await self.versions.interrupt_running()
        shutil.rmtree(self.config.models_dir / RUNS_DIR, ignore_errors=True)
        return interrupted

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

    async def start(
        self,
        guild_id: int,
        requested_by: int | None,
        channel_id: int | None,
        on_update: OnUpdate | None = None,
    ) -> RunHandle:
        """Check, record and start a run; refusals are ``QuotebotError``s with a reason for people."""
        if guild_id in self._runs:
            run = self._runs[guild_id].run
            raise RetrainRefusedError(f"a retrain is already running in this server (run #{run.id}).")
        counts = await self.gather(guild_id)
        run = await self.versions.start_run(guild_id, requested_by, channel_id, self.config.max_concurrent)
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
        tasks = [handle.task for handle in self._runs.values() if handle.task is not None]
        for task in tasks:
            task.cancel()  # each run kills its child on the way out
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one run ---------------------------------------------------------------------------------------------

    async def _run(self, handle: RunHandle, counts: dict[str, int]) -> RunUpdate:
        run = handle.run
        work = self.config.models_dir / RUNS_DIR / f"run-{run.id}"
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
            if handle.child is not None:
                await handle.child.kill()  # a child never outlives its run
            shutil.rmtree(work, ignore_errors=True)
            self._runs.pop(run.guild_id, None)

    async def _train_judge_promote(
        self, handle: RunHandle, work: Path, deadline: float, figures: dict
    ) -> ModelVersion:
        run, config = handle.run, self.config
        parent = await self.versions.version(run.parent_version_id) if run.parent_version_id else None
        parent_path = self.versions.file_of(parent) if parent else config.bundled_model
        work.mkdir(parents=True, exist_ok=True)
        candidate = work / "candidate.pt"
        corpus = ["--db", str(Path(config.db_path).resolve()), "--guild", str(run.guild_id)]
        corpus += ["--min-votes", str(config.min_votes)]
        base = ["--replay-corpus", str(config.base_corpus)] if config.base_corpus else []
        base += ["--replay-cache", str(self.replay_cache(parent_path, parent))]
        base += ["--replay-samples", str(config.replay_samples)]
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
        return await self._promote(run, parent, candidate, figures)

    def replay_cache(self, parent_path: Path, parent: ModelVersion | None) -> Path:
        """Where the parent's samples are cached (used when its base corpus is not here): beside a
        version's file; for the bundled model, in the models folder (the repository may be read-only)."""
        if parent is not None:
            return replay_cache_path_for(parent_path)
        return self.config.models_dir / "bundled" / replay_cache_path_for(parent_path).name

    async def _child(
        self, handle: RunHandle, argv: list[str], deadline: float, phase: str, figures: dict
    ) -> dict | None:
        """Run one child to its end; its last ``judged`` event (if any). ``RunEnded`` unless it succeeded."""
        if handle.cancelled:
            raise RunEnded("cancelled", "cancelled")
        child = handle.child = await Child.start(argv)
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
            minutes = self.config.time_limit_s / 60
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
            reason = child.error_line() or describe_exit(code)
            raise RunEnded("failed", f"the {what} process stopped: {reason}")
        return judged

    async def _promote(
        self, run: RetrainRun, parent: ModelVersion | None, candidate: Path, figures: dict
    ) -> ModelVersion:
        """Move the candidate into place (atomic rename), record it, point the server at it, load it."""
        number = await self.versions.next_number(run.guild_id)
        relative = version_path(run.guild_id, number)
        target = self.versions.models_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        moved = [(candidate, target)]
        moved += [(side(candidate), side(target)) for side in (plot_path_for, metrics_path_for)]
        for source, destination in moved:
            if source.is_file():
                os.replace(source, destination)  # same folder tree, same file system: atomic
        scores = {k: v for k, v in figures.items() if k.startswith(("base_", "guild_", "loop_"))}
        trained_on = {k: v for k, v in figures.items() if k in ("favoured", "source")}
        trained_on.update({k[len("trained_") :]: v for k, v in figures.items() if k.startswith("trained_")})
        try:
            version = await self.versions.record_version(
                run.guild_id, run.id, relative, parent.id if parent else None, scores, trained_on
            )
        except BaseException:
            for _, destination in moved:  # no row, no file: the next number stays free
                destination.unlink(missing_ok=True)
            raise
        if self.guild_models is not None:
            try:  # promoted whatever happens here: a model that will not load is passed over, and logged
                serving = await self.guild_models.activate(run.guild_id)
                if serving.version is None or serving.version.id != version.id:
                    _log.error("retrain %d: version %d was promoted but could not be loaded", run.id, number)
            except QuotebotError as exc:  # the host is shutting down: the next start loads it
                _log.warning("retrain %d: version %d not loaded now: %s", run.id, number, exc)
        return version
