"""Fixtures of the end-to-end tests: a checkpoint whose vocabulary knows mentions, and a running bot.

``discord_server`` (a fresh Discord-compatible test server per test) comes from
tests/discord_server/fixtures.py,
registered for every test in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model.checkpoint import save_checkpoint
from model.vocab import Vocab
from tests.discord.helpers import bot_settings, running
from tests.discord_server import DiscordServer
from tests.helpers import make_tiny_model


@pytest.fixture
def mention_checkpoint(tmp_path: Path, sample_vocab: Vocab) -> Path:
    vocab = sample_vocab.grow(["@<>!&#0123456789"])
    return save_checkpoint(tmp_path / "mentions.pt", make_tiny_model(vocab), vocab, {"val_bpc": 4.5})


@pytest.fixture
async def server_and_bot(discord_server: DiscordServer, mention_checkpoint: Path):
    async with running(bot_settings(discord_server, mention_checkpoint)) as bot:
        yield discord_server, bot
