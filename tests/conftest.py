"""Shared fixtures: one-thread torch, the sample corpus, a tiny real model, a checkpoint of it.

The Discord test server's fixtures (``discord_server``, ``use_discord_server``) are registered here as a
plugin, so every test can ask for them by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from model.checkpoint import save_checkpoint
from model.network import CharLSTM
from model.vocab import Vocab
from tests.helpers import SAMPLE_CORPUS, make_tiny_model

# One torch thread: the tests' models are tiny, and on a 2-core machine shared with subprocesses (the bot,
# training children) a second intra-op thread mostly waits for a core (measured: 28 s against 5 s for the
# sampling tests). Subprocesses get the same through OMP_NUM_THREADS.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.discord_server.fixtures", "tests.postgres"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts and ends on one torch thread, even one whose code sets another count (a
    benchmark's main() sets it as the bot's host would)."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sample_quotes() -> list[str]:
    """The repo's own sample quotes, one per line."""
    return [line for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def sample_vocab(sample_quotes: list[str]) -> Vocab:
    return Vocab.from_texts(sample_quotes)


@pytest.fixture
def tiny_model(sample_vocab: Vocab) -> CharLSTM:
    return make_tiny_model(sample_vocab)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, tiny_model: CharLSTM, sample_vocab: Vocab) -> Path:
    """A real checkpoint file of the tiny model."""
    return save_checkpoint(tmp_path / "tiny.pt", tiny_model, sample_vocab, {"val_bpc": 4.5, "parent": None})
