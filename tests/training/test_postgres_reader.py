"""training/postgres_reader.py: ``--db postgresql://...`` reads the same quotes as ``--db quotes.db``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.storage.store import Store
from tests.helpers import GUILD, OTHER_GUILD, fill_store
from training.corpus import load_quotes
from training.postgres_reader import shown
from training.readers import CorpusError


async def test_the_same_quotes_from_postgresql_as_from_sqlite(
    postgres_url: str, tmp_path: Path, sample_quotes: list[str]
):
    sqlite_file = tmp_path / "quotes.db"
    for target in (postgres_url, sqlite_file):
        async with await Store.open(target) as store:
            await fill_store(store, sample_quotes)
    for guild, votes in ((GUILD, 1), (GUILD, 2), (OTHER_GUILD, 1), (None, 1)):
        # In a thread, as the training CLI runs it: outside any event loop.
        from_pg = await asyncio.to_thread(load_quotes, postgres_url, guild_id=guild, min_votes=votes)
        assert from_pg == load_quotes(sqlite_file, guild_id=guild, min_votes=votes)
        assert from_pg  # something was read
    assert len(load_quotes(sqlite_file, guild_id=GUILD, min_votes=2)) == 10 + 6  # favoured, then added


def test_an_unreachable_store_is_a_corpus_error_without_the_password():
    url = "postgresql://bot:hunter2-secret@127.0.0.1:9/quotes"  # port 9 (discard): nothing listens
    with pytest.raises(CorpusError) as caught:
        load_quotes(url)
    assert "hunter2" not in str(caught.value) and "cannot read the store" in str(caught.value)
    assert shown(url) == "postgresql://bot:***@127.0.0.1:9/quotes"
