"""Retraining a server's model: real store, real child processes, tiny models, runs of a few seconds.

The operator's shell path (``python -m training finetune --db --guild``) and the bot's runs read the same
quotes; a run promotes, rejects, fails when its child is killed, stops at its time limit, and leaves no
partial file behind.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import signal
from pathlib import Path

import pytest
import torch

from bot.quotes.service import QuoteService
from bot.retrain.progress import RunUpdate
from bot.retrain.retrainer import (
    RUNS_DIR,
    NoRunningRetrainError,
    RetrainConfig,
    Retrainer,
    TooFewQuotesError,
)
from bot.retrain.texts import interrupted_text
from bot.serving.guild_models import GuildModels
from bot.serving.host import DEFAULT_MODEL_ID, GenerationRequest, ModelHost
from bot.storage.model_versions import ModelVersions, RetrainRefusedError
from bot.storage.store import Store
from model.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import (
    ADMIN,
    GUILD,
    MEMBER,
    OTHER_GUILD,
    SAMPLE_CORPUS,
    fill_store,
    make_tiny_model,
    write_quote,
)
from training.__main__ import main as training_main
from training.corpus import corpus_fingerprint, load_quotes


@pytest.fixture
async def store(tmp_path: Path, sample_quotes: list[str]):
    store = await Store.open(tmp_path / "quotes.db")
    await fill_store(store, sample_quotes)
    yield store
    await store.close()


@pytest.fixture
def base_checkpoint(tmp_path: Path, sample_vocab) -> Path:
    """A tiny untrained model that names the sample corpus as its own (so it is the base text)."""
    torch.manual_seed(0)
    meta = {"corpus": str(SAMPLE_CORPUS.relative_to(SAMPLE_CORPUS.parents[1])), "val_fraction": 0.1}
    return save_checkpoint(tmp_path / "base.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)


@pytest.mark.slow
async def test_operator_finetune_from_the_store_reads_the_guilds_favoured_and_source_quotes(
    store: Store, base_checkpoint: Path, tmp_path: Path
):
    out = tmp_path / "operator.pt"
    argv = ["finetune", "--db", store.path, "--guild", str(GUILD), "--min-votes", "2"]
    argv += ["--from", str(base_checkpoint), "--out", str(out), "--epochs", "1", "--batch-size", "16"]
    assert training_main([*argv, "--progress", "none", "--threads", "1", "--replay-share", "0"]) == 0
    meta = load_checkpoint(out).metadata
    wanted = await store.favoured_and_source_quotes(GUILD, min_votes=2)
    assert meta["corpus_quotes"] == len(wanted) == 16  # 10 with two votes + 6 added; the 1-vote ones are not
    quotes = load_quotes(store.path, "sqlite", guild_id=GUILD, min_votes=2)
    assert sorted(quotes) == sorted(q.text for q in wanted)
    assert meta["corpus_fingerprint"] == corpus_fingerprint(quotes)
    assert meta["corpus_guild_id"] == GUILD


# --- the bot's runs ----------------------------------------------------------------------------------------


@pytest.fixture
async def bot_parts(store: Store, base_checkpoint: Path):
    """The real model host (serving the base checkpoint), versions and the per-server resolver."""
    host = ModelHost(base_checkpoint, device="cpu", threads=1)
    await host.start()
    versions = ModelVersions(store, Path(store.path).parent / "models")
    yield host, versions, GuildModels(versions, host)
    await host.close()


def make_retrainer(store: Store, bot_parts, base_checkpoint: Path, **changes) -> Retrainer:
    """Tiny, quick runs: a 2-second training budget, a short loop test, every update passed on."""
    _host, versions, guild_models = bot_parts
    values = {
        "models_dir": versions.models_dir,
        "db_path": Path(store.path),
        "bundled_model": base_checkpoint,
        "min_quotes": 5,
        "minutes": 0.03,
        "time_limit_s": 90.0,
        "max_concurrent": 2,
        "score_margin": 10.0,  # a tiny model barely moves in 2 s: judge the plumbing, not the learning
        "loop_target": 1.0,
        "max_quote_chars": 40,
        "progress_every_s": 0.0,
        # a small voice fit: it is tests/model/test_training_voice.py's subject
        "finetune_args": (
            "--batch-size",
            "16",
            "--eval-every",
            "5",
            "--chunk-len",
            "64",
            "--voice-samples",
            "16",
        ),
    }
    return Retrainer(RetrainConfig(**{**values, **changes}), store, versions, guild_models)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def wait_for_child(handle, timeout: float = 30.0) -> int:
    """The pid of the run's training child once it has started writing."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while handle.child is None or handle.latest is None or handle.latest.phase != "training":
        assert loop.time() < end, "the training child never reported progress"
        assert not handle.task.done(), handle.task.result() if handle.task.done() else None
        await asyncio.sleep(0.05)
    return handle.child.pid


@pytest.mark.slow
async def test_a_run_promotes_and_only_that_server_gets_the_new_model(store, bot_parts, base_checkpoint):
    host, versions, guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint)
    updates: list[RunUpdate] = []

    async def show(update: RunUpdate) -> None:
        updates.append(update)

    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5, on_update=show)
    final = await asyncio.wait_for(handle.task, 90)
    assert final.phase == "promoted", final.text
    assert "version 1 now serves this server" in final.text
    phases = [u.phase for u in updates]
    assert phases[0] == "starting" and "scoring" in phases
    assert updates[-1] is final and sum(u.final for u in updates) == 1
    version = final.version
    assert version.path == "guild-111/v1.pt" and version.parent_id is None and version.run_id == handle.run.id
    assert versions.file_of(version).is_file()
    assert versions.file_of(version).with_name("v1.loss.png").is_file()  # for !model
    assert version.trained_on["favoured"] == 20 and version.trained_on["source"] == 6
    assert version.trained_on["steps"] > 0 and version.scores["base_quotes"] > 0
    assert not (versions.models_dir / RUNS_DIR).exists() or not files_under(versions.models_dir / RUNS_DIR)
    run = await versions.run(handle.run.id)
    assert run.status == "promoted" and run.figures["base_candidate_nats"] > 0
    # The server is served by its own model, loaded in the host; another server keeps the bundled one.
    service = QuoteService(host, cooldown_seconds=0, guild_models=guild_models)
    assert (await write_quote(service, 1, "Hey,", guild_id=GUILD)).model_id == version.model_id
    assert (await write_quote(service, 1, "Hey,", guild_id=OTHER_GUILD)).model_id == DEFAULT_MODEL_ID
    assert host.loaded(version.model_id).metadata["corpus_guild_id"] == GUILD
    # Rollback: back to the bundled model; the file stays for later.
    assert await versions.rollback(GUILD) is None
    await guild_models.activate(GUILD)
    assert (await write_quote(service, 1, "Hey,", guild_id=GUILD)).model_id == DEFAULT_MODEL_ID
    assert versions.file_of(version).is_file()


@pytest.mark.slow
async def test_a_run_on_postgresql_reads_its_quotes_there_and_promotes(
    postgres_url: str, tmp_path: Path, sample_quotes: list[str], base_checkpoint: Path
):
    store = await Store.open(postgres_url)
    try:
        await fill_store(store, sample_quotes)
        host = ModelHost(base_checkpoint, device="cpu", threads=1)
        await host.start()
        versions = ModelVersions(store, tmp_path / "models")
        parts = (host, versions, GuildModels(versions, host))
        retrainer = make_retrainer(store, parts, base_checkpoint, db_path=postgres_url)
        try:
            handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
            final = await asyncio.wait_for(handle.task, 90)
        finally:
            await host.close()
        assert final.phase == "promoted", final.text
        assert final.version.trained_on["favoured"] == 20 and final.version.trained_on["source"] == 6
        assert (await versions.current(GUILD)).id == final.version.id
        assert load_checkpoint(versions.file_of(final.version)).metadata["corpus"].startswith("postgresql://")
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_rejected_run_reports_its_figures_and_changes_nothing(store, bot_parts, base_checkpoint):
    _host, versions, guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, score_margin=-math.inf)
    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    final = await asyncio.wait_for(handle.task, 90)
    assert final.phase == "rejected", final.text
    assert "nothing changed" in final.text and "worse than the margin" in final.text
    assert "nats/char" in final.text and "keeps serving" in final.text
    run = await versions.run(handle.run.id)
    assert run.status == "rejected" and run.detail == final.text
    for key in ("base_current_nats", "base_candidate_nats", "guild_current_nats", "loop_candidate"):
        assert isinstance(run.figures[key], float)
    assert await versions.versions(GUILD) == [] and await versions.current(GUILD) is None
    assert files_under(versions.models_dir) == []  # the candidate is gone too
    assert await guild_models.model_id(GUILD) == DEFAULT_MODEL_ID


@pytest.mark.slow
async def test_a_child_killed_mid_run_fails_the_run_and_leaves_nothing(store, bot_parts, base_checkpoint):
    host, versions, guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, minutes=1.0)
    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    pid = await wait_for_child(handle)
    # While it runs: one run per server, in this process and in the store.
    with pytest.raises(RetrainRefusedError, match="already running"):
        await retrainer.start(GUILD, requested_by=MEMBER, channel_id=5)
    with pytest.raises(RetrainRefusedError, match="already running"):
        await make_retrainer(store, bot_parts, base_checkpoint).start(
            GUILD, requested_by=MEMBER, channel_id=5
        )
    os.kill(pid, signal.SIGKILL)
    final = await asyncio.wait_for(handle.task, 30)
    assert final.phase == "failed"
    assert "the training process was killed by signal SIGKILL" in final.text and "keeps serving" in final.text
    assert (await versions.run(handle.run.id)).status == "failed"
    assert files_under(versions.models_dir) == []  # no partial checkpoint, metrics or state file
    assert await guild_models.model_id(GUILD) == DEFAULT_MODEL_ID
    done = await host.complete(GenerationRequest(seed="Hey,", max_chars=30, rng_seed=1))
    assert done.text.startswith("Hey,")
    assert retrainer.active(GUILD) is None  # and a new run may start


async def test_a_failed_child_shows_members_no_path_or_stderr(
    store, bot_parts, base_checkpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # A "python" that fails as a training process does: a traceback and an error line naming files.
    secret = tmp_path / "operator-home" / "models" / "base.pt"
    failing = tmp_path / "failing-python"
    failing.write_text(
        "#!/bin/sh\n"
        f"echo 'Traceback (most recent call last):\n  File \"{secret.parent}/x.py\", line 1' >&2\n"
        f"echo 'error: {secret}: the file is truncated or damaged' >&2\n"
        "exit 2\n"
    )
    failing.chmod(0o755)
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, python=str(failing))
    with caplog.at_level(logging.ERROR, logger="bot.retrain.retrainer"):
        handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
        final = await asyncio.wait_for(handle.task, 30)
    assert final.phase == "failed" and "the training process stopped (exit status 2" in final.text
    _host, versions, _guild_models = bot_parts
    stored = (await versions.run(handle.run.id)).detail  # what !retrain status shows later
    for text in (final.text, stored):
        assert "operator-home" not in text and "Traceback" not in text and "truncated" not in text
    (error_id,) = re.findall(r"error id `([0-9a-f]+)`", final.text)
    (logged,) = [r.getMessage() for r in caplog.records if error_id in r.getMessage()]
    assert str(secret) in logged and "Traceback" in logged


@pytest.mark.slow
async def test_a_run_over_its_time_limit_is_stopped(store, bot_parts, base_checkpoint):
    _host, versions, _guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, minutes=1.0, time_limit_s=4.0)
    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    final = await asyncio.wait_for(handle.task, 30)
    assert final.phase == "failed" and "time limit" in final.text
    assert handle.child is None and files_under(versions.models_dir) == []


@pytest.mark.slow
async def test_cancel_stops_the_child(store, bot_parts, base_checkpoint):
    _host, versions, _guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, minutes=1.0)
    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    pid = await wait_for_child(handle)
    await retrainer.cancel(GUILD, by=ADMIN)
    final = await asyncio.wait_for(handle.task, 30)
    assert final.phase == "cancelled" and "cancelled" in final.text
    assert (await versions.run(handle.run.id)).status == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone
    assert files_under(versions.models_dir) == []
    with pytest.raises(NoRunningRetrainError):
        await retrainer.cancel(GUILD)


async def test_too_few_quotes_is_refused_before_any_run(store, bot_parts, base_checkpoint):
    _host, versions, _guild_models = bot_parts
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, min_quotes=50, min_votes=2)
    with pytest.raises(TooFewQuotesError, match=r"10 favoured \(with at least 2 votes\) and 6 added quotes"):
        await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    assert await versions.latest_run(GUILD) is None


async def test_start_up_marks_runs_of_a_dead_bot_interrupted_and_clears_their_files(
    store, bot_parts, base_checkpoint
):
    _host, versions, _guild_models = bot_parts
    run = await versions.start_run(GUILD, ADMIN, 5, max_running=1)  # as left by a bot killed mid-run
    leftover = versions.models_dir / RUNS_DIR / f"run-{run.id}" / "candidate.pt"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a checkpoint")
    retrainer = make_retrainer(store, bot_parts, base_checkpoint)
    assert [r.id for r in await retrainer.start_up()] == [run.id]
    assert (await versions.run(run.id)).status == "interrupted"
    assert files_under(versions.models_dir) == []
    assert "was interrupted" in interrupted_text(run)


async def test_start_up_never_touches_another_processs_live_run_or_its_folder(
    store, bot_parts, base_checkpoint
):
    _host, versions, _guild_models = bot_parts
    other = ModelVersions(store, versions.models_dir, owner="elsewhere/shards 1")
    live = await other.start_run(GUILD + 1, ADMIN, 5, max_running=2)  # another process, beating now
    folder = versions.models_dir / RUNS_DIR / f"run-{live.id}"
    folder.mkdir(parents=True)
    (folder / "candidate.pt").write_bytes(b"their checkpoint, being written")
    retrainer = make_retrainer(store, bot_parts, base_checkpoint)
    assert await retrainer.start_up() == []
    assert (await versions.run(live.id)).status == "running"
    assert files_under(versions.models_dir) == [folder / "candidate.pt"]


async def test_close_ends_a_run_whose_first_cancel_was_lost(store, bot_parts, base_checkpoint):
    # Python 3.11's asyncio.wait_for can return a result that lands with the cancel, and drop the cancel:
    # a run reading its child's progress lines went on to promote after the bot had closed (seen once).
    retrainer = make_retrainer(store, bot_parts, base_checkpoint)
    cancels = []

    async def run_that_loses_one_cancel() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels.append(1)
                if len(cancels) > 1:
                    raise  # the second cancel ends it

    task = asyncio.create_task(run_that_loses_one_cancel())
    retrainer._next_tasks.add(task)
    await asyncio.sleep(0)
    await asyncio.wait_for(retrainer.close(), 5)
    assert task.cancelled() and len(cancels) == 2


@pytest.mark.slow
async def test_closing_the_bot_mid_run_stops_the_child_and_the_next_start_marks_it_interrupted(
    store, bot_parts, base_checkpoint
):
    _host, versions, _guild_models = bot_parts
    # A minute of training that early stopping cannot cut short: on a busy machine the first progress line
    # (every few seconds) came after a tiny run had already stopped early, been judged and promoted.
    long_run = ("--batch-size", "16", "--eval-every", "5", "--chunk-len", "64", "--patience", "100000")
    retrainer = make_retrainer(store, bot_parts, base_checkpoint, minutes=1.0, finetune_args=long_run)
    handle = await retrainer.start(GUILD, requested_by=ADMIN, channel_id=5)
    pid = await wait_for_child(handle)
    await retrainer.close()  # the bot's shutdown: the store may already be closed, so nothing is written
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (await versions.run(handle.run.id)).status == "running"
    assert files_under(versions.models_dir) == []
    restarted = make_retrainer(store, bot_parts, base_checkpoint)
    assert [r.id for r in await restarted.start_up()] == [handle.run.id]
    assert (await versions.run(handle.run.id)).status == "interrupted"
