"""Retraining a server's model: real store, real child processes, tiny models, runs of a few seconds.

The operator's shell path (``python -m training finetune --db --guild``) and the bot's runs read the same
quotes; a run promotes, rejects, fails when its child is killed, stops at its time limit, and leaves no
partial file behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bot.store import Store
from model.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import SAMPLE_CORPUS, make_tiny_model
from training.__main__ import main as training_main
from training.corpus import corpus_fingerprint, load_quotes

GUILD, OTHER_GUILD = 111, 222
ADMIN, MEMBER = 7, 8


async def fill_store(store: Store, sample_quotes: list[str]) -> None:
    """Guild 111: 10 quotes with 2 votes, 10 with 1, 6 added source quotes. Guild 222: 5 with 3 votes."""
    plan = [(GUILD, q, 2) for q in sample_quotes[0:10]] + [(GUILD, q, 1) for q in sample_quotes[10:20]]
    plan += [(OTHER_GUILD, q, 3) for q in sample_quotes[100:105]]
    for guild, text, votes in plan:
        quote_id = await store.add_quote(
            guild_id=guild, channel_id=1, requester_id=MEMBER, seed=text[:4], text=text,
            settings={"temperature": 0.8}, model_version="default",
        )  # fmt: skip
        for voter in range(votes):
            await store.add_vote(quote_id, user_id=1000 + voter)
    for text in sample_quotes[200:206]:
        await store.add_source_quote(GUILD, ADMIN, text)


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
