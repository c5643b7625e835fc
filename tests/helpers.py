"""Helpers the tests share: paths, a tiny real model, a filled store, and small probes.

Fixtures live in the conftest.py files; these are plain functions and constants, imported by name.
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import torch

from bot.quotes.service import QuoteResult, QuoteService
from bot.storage.store import Store
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab

REPO = Path(__file__).resolve().parent.parent  # the repository root


SAMPLE_CORPUS = REPO / "data" / "sample_quotes.txt"


def make_tiny_model(vocab: Vocab, seed: int = 0, dropout: float = 0.3, layers: int = 2) -> CharLSTM:
    """A small untrained LSTM with dropout, deterministic for a given seed."""
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=len(vocab), embed_dim=16, hidden_size=32, num_layers=layers, dropout=dropout
    )
    return CharLSTM(config)


async def write_quote(
    service: QuoteService,
    user_id: int,
    text: str = "",
    guild_id: int | None = None,
    channel_id: int | None = None,
) -> QuoteResult:
    """A quote from the text form, as ``!quote`` asks for it: parsed, then written by the service."""
    return await service.write(service.parse(text, user_id, guild_id, channel_id))


GUILD, OTHER_GUILD = 111, 222


ADMIN, MEMBER = 7, 8


async def fill_store(store: Store, sample_quotes: list[str], guild: int = GUILD) -> None:
    """``guild``: 10 quotes with 2 votes, 10 with 1, 6 added source quotes. Guild 222: 5 with 3 votes."""
    plan = [(guild, q, 2) for q in sample_quotes[0:10]] + [(guild, q, 1) for q in sample_quotes[10:20]]
    plan += [(OTHER_GUILD, q, 3) for q in sample_quotes[100:105]]
    for quote_guild, text, votes in plan:
        quote_id = await store.add_quote(
            guild_id=quote_guild, channel_id=1, requester_id=MEMBER, seed=text[:4], text=text,
            settings={"temperature": 0.8}, model_version="default",
        )  # fmt: skip
        for voter in range(votes):
            await store.add_vote(quote_id, user_id=1000 + voter)
    for text in sample_quotes[200:206]:
        await store.add_source_quote(guild, ADMIN, text)


def cells_holding(path: Path, value: int | str) -> list[str]:
    """Every table.column whose cell equals ``value`` (ids) or contains it (text)."""
    found = []
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                for (cell,) in db.execute(f"SELECT {column} FROM {table}"):
                    if cell == value or (isinstance(value, str) and isinstance(cell, str) and value in cell):
                        found.append(f"{table}.{column}")
    return found


def looping_model(vocab: Vocab, cycle: str = "abcd") -> CharLSTM:
    """A real one-layer LSTM wired by hand so each character of ``cycle`` is followed by the next one.

    The embedding is one-hot, the input and output gates are held open and the forget gate shut, so h
    is the current character (times tanh(tanh(10)) ~ 0.76); the head maps it to the next character.
    """
    size = len(vocab)
    model = CharLSTM(
        ModelConfig(vocab_size=size, embed_dim=size, hidden_size=size, num_layers=1, dropout=0.0)
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.embed.weight.copy_(torch.eye(size))
        bias = model.lstm.bias_ih_l0  # gate order: input, forget, cell, output
        bias[:size], bias[size : 2 * size], bias[3 * size :] = 10.0, -10.0, 10.0
        model.lstm.weight_ih_l0[2 * size : 3 * size] = 10.0 * torch.eye(size)
        for here, after in zip(cycle, cycle[1:] + cycle[0], strict=True):
            model.head.weight[vocab.char_id(after), vocab.char_id(here)] = 20.0
    return model.eval()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for HEALTH_PORT)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
