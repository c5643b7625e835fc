"""Shared fixtures: the sample corpus, a tiny real model, and temporary checkpoint paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bot.quotes.service import QuoteResult, QuoteService
from model.checkpoint import save_checkpoint
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab

# One torch thread: the tests' models are tiny, and on a 2-core machine shared with subprocesses (the bot,
# training children) a second intra-op thread mostly waits for a core (measured: 28 s against 5 s for the
# sampling tests). Subprocesses get the same through OMP_NUM_THREADS.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO / "data" / "sample_quotes.txt"


@pytest.fixture(scope="session")
def sample_quotes() -> list[str]:
    """The repo's own sample quotes, one per line."""
    return [line for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def sample_vocab(sample_quotes: list[str]) -> Vocab:
    return Vocab.from_texts(sample_quotes)


def make_tiny_model(vocab: Vocab, seed: int = 0, dropout: float = 0.3, layers: int = 2) -> CharLSTM:
    """A small untrained LSTM with dropout, deterministic for a given seed."""
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=len(vocab), embed_dim=16, hidden_size=32, num_layers=layers, dropout=dropout
    )
    return CharLSTM(config)


@pytest.fixture
def tiny_model(sample_vocab: Vocab) -> CharLSTM:
    return make_tiny_model(sample_vocab)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, tiny_model: CharLSTM, sample_vocab: Vocab) -> Path:
    """A real checkpoint file of the tiny model."""
    return save_checkpoint(tmp_path / "tiny.pt", tiny_model, sample_vocab, {"val_bpc": 4.5, "parent": None})


async def write_quote(
    service: QuoteService,
    user_id: int,
    text: str = "",
    guild_id: int | None = None,
    channel_id: int | None = None,
) -> QuoteResult:
    """A quote from the text form, as ``!quote`` asks for it: parsed, then written by the service."""
    return await service.write(service.parse(text, user_id, guild_id, channel_id))
