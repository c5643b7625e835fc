"""bot.serving.guild_models: each server's model through the real host and store; a damaged file falls
back."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from pathlib import Path

import pytest

from bot.errors import BusyError, UnknownCharsError
from bot.quotes.service import QuoteService
from bot.retrain.texts import model_text
from bot.serving.guild_models import GuildModels
from bot.serving.host import DEFAULT_MODEL_ID, ModelHost
from bot.storage.model_versions import ModelVersions, version_path
from bot.storage.store import Store
from model.checkpoint import save_checkpoint
from tests.helpers import make_tiny_model, write_quote

GUILD, OTHER = 111, 222


@pytest.fixture
async def parts(tmp_path: Path, tiny_checkpoint: Path):
    store = await Store.open(tmp_path / "quotes.db")
    host = ModelHost(tiny_checkpoint, device="cpu", threads=1)
    await host.start()
    versions = ModelVersions(store, tmp_path / "models")
    yield versions, host, GuildModels(versions, host)
    await host.close()
    await store.close()


async def add_version(versions: ModelVersions, sample_vocab, number: int, parent_id: int | None, seed: int):
    """A promoted version whose vocabulary also knows '5' and '€' (the bundled tiny model does not)."""
    vocab = sample_vocab.grow(["5€"])
    target = versions.models_dir / version_path(GUILD, number)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target, make_tiny_model(vocab, seed=seed), vocab, {"number": number})
    return await versions.record_version(GUILD, None, version_path(GUILD, number), parent_id, {}, {})


async def test_a_server_gets_its_own_model_and_others_keep_the_bundled_one(parts, sample_vocab):
    versions, host, guild_models = parts
    v1 = await add_version(versions, sample_vocab, 1, None, seed=1)
    service = QuoteService(host, cooldown_seconds=0, guild_models=guild_models)
    mine = await write_quote(service, user_id=5, text="5€ --len 20", guild_id=GUILD)
    assert mine.model_id == v1.model_id == "version-1" and mine.reply.startswith("5€")
    assert host.loaded(v1.model_id).metadata["number"] == 1
    with pytest.raises(UnknownCharsError, match="€"):  # the other server's (bundled) model lacks '€'
        await write_quote(service, user_id=5, text="5€ --len 20", guild_id=OTHER)
    assert await service.model_for(OTHER) == await service.model_for(None) == DEFAULT_MODEL_ID


async def test_a_corrupt_current_version_is_refused_and_its_parent_serves(
    parts, sample_vocab, caplog: pytest.LogCaptureFixture
):
    versions, host, guild_models = parts
    v1 = await add_version(versions, sample_vocab, 1, None, seed=1)
    v2 = await add_version(versions, sample_vocab, 2, v1.id, seed=2)
    path = versions.file_of(v2)
    path.write_bytes(path.read_bytes()[:1500])  # damaged after it was promoted
    with caplog.at_level(logging.ERROR, logger="bot.serving.guild_models"):
        serving = await guild_models.serving(GUILD)
    assert serving.version.id == v1.id
    assert [(bad.id, "truncated" in why) for bad, why in serving.skipped] == [(v2.id, True)]
    assert any("version 2 refused at load" in r.getMessage() for r in caplog.records)
    assert v2.model_id not in host.loaded_ids
    assert await guild_models.model_id(GUILD) == v1.model_id  # remembered: not tried again per request
    assert sum("refused at load" in r.getMessage() for r in caplog.records) == 1
    text = model_text(await guild_models.serving(GUILD), None, "default.pt")
    assert "version 1" in text and "Version 2 could not be loaded" in text
    # Members read a reason and an error id; the path (and the library's words) only the log.
    assert str(path) not in text and str(path.parent) not in text and "guild-" not in text
    (error_id,) = re.findall(r"error id `([0-9a-f]+)`", text)
    (logged,) = [r.getMessage() for r in caplog.records if error_id in r.getMessage()]
    assert str(path) in logged


async def test_every_version_bad_means_the_bundled_model(parts, sample_vocab):
    versions, _host, guild_models = parts
    v1 = await add_version(versions, sample_vocab, 1, None, seed=1)
    versions.file_of(v1).unlink()  # a missing file is refused like a damaged one
    serving = await guild_models.serving(GUILD)
    assert serving.version is None and serving.model_id == DEFAULT_MODEL_ID
    why = serving.skipped[0][1]
    assert "its file is missing" in why and "error id" in why and str(versions.models_dir) not in why


async def test_activate_follows_a_rollback_and_a_new_promotion(parts, sample_vocab):
    versions, _host, guild_models = parts
    v1 = await add_version(versions, sample_vocab, 1, None, seed=1)
    assert await guild_models.model_id(GUILD) == v1.model_id
    await versions.rollback(GUILD)
    assert await guild_models.model_id(GUILD) == v1.model_id  # cached until told
    assert (await guild_models.activate(GUILD)).model_id == DEFAULT_MODEL_ID
    v2 = await add_version(versions, sample_vocab, 2, None, seed=2)
    assert (await guild_models.activate(GUILD)).model_id == v2.model_id


async def test_model_text_for_the_bundled_model(parts):
    _versions, _host, guild_models = parts
    text = model_text(await guild_models.serving(GUILD), None, "default.pt")
    assert "bundled model (default.pt)" in text and "no retrain" in text


async def test_requests_waiting_for_a_server_model_to_load_count_against_the_queue(parts, sample_vocab):
    versions, host, guild_models = parts
    await add_version(versions, sample_vocab, 1, None, seed=1)
    host.queue_size = 2  # a small queue; the server's model is not loaded yet
    gate = threading.Event()
    host._executor.submit(gate.wait)  # the executor is busy: the load waits
    try:
        waiting = [asyncio.create_task(guild_models.model_id(GUILD)) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert host.waiting == 2
    finally:
        gate.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert outcomes.count("version-1") == 2 and sum(isinstance(o, BusyError) for o in outcomes) == 3
    # !model (not a request) is never refused as busy.
    assert (await guild_models.serving(GUILD)).model_id == "version-1"


async def test_a_version_another_process_promoted_serves_after_the_recheck(parts, sample_vocab):
    versions, host, _own = parts
    now = [0.0]
    elsewhere = GuildModels(versions, host, recheck_s=10.0, clock=lambda: now[0])  # the other process
    assert await elsewhere.model_id(GUILD) == DEFAULT_MODEL_ID
    v1 = await add_version(versions, sample_vocab, 1, None, seed=1)  # promoted by this process
    now[0] = 9.0
    assert await elsewhere.model_id(GUILD) == DEFAULT_MODEL_ID  # still its cached lineage
    now[0] = 10.0
    assert await elsewhere.model_id(GUILD) == v1.model_id  # the store said: version 1 serves now
    await versions.rollback(GUILD)
    now[0] = 25.0
    assert await elsewhere.model_id(GUILD) == DEFAULT_MODEL_ID
