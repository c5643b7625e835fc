"""Quotes left out of retrains: only the server's own, and every reader of training data leaves them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage.exclusions import TrainingExclusions
from bot.storage.records import StoreInputError, UnknownQuoteError
from bot.storage.store import Store
from bot.storage.training_data import read_training_quotes
from tests.helpers import GUILD, OTHER_GUILD, fill_store
from training.corpus import load_quotes


@pytest.fixture
async def store(tmp_path: Path, sample_quotes: list[str]):
    store = await Store.open(tmp_path / "quotes.db")
    await fill_store(store, sample_quotes)
    yield store
    await store.close()


async def test_an_excluded_quote_is_read_by_no_one_and_comes_back_when_included(store: Store):
    exclusions = TrainingExclusions(store)
    before = await store.favoured_and_source_quotes(GUILD)
    favoured = next(q for q in before if q.kind == "favoured")
    source = next(q for q in before if q.kind == "source")
    assert await exclusions.exclude(GUILD, "favoured", favoured.id)
    assert await exclusions.exclude(GUILD, "source", source.id)
    assert not await exclusions.exclude(GUILD, "source", source.id)  # already out
    assert await exclusions.count(GUILD) == 2
    after = await store.favoured_and_source_quotes(GUILD)
    assert len(after) == len(before) - 2 and favoured.text not in {q.text for q in after}
    # The operator's export and the training child read the same file the same way.
    exported = read_training_quotes(store.path, GUILD)
    assert {q.text for q in exported} == {q.text for q in after}
    trained = load_quotes(store.path, "sqlite", guild_id=GUILD)
    assert favoured.text not in trained and source.text not in trained
    assert len(trained) == len(after)
    assert await exclusions.include(GUILD, "source", source.id)
    assert not await exclusions.include(GUILD, "source", source.id)
    assert len(await store.favoured_and_source_quotes(GUILD)) == len(before) - 1


async def test_only_the_servers_own_quotes_can_be_excluded(store: Store):
    exclusions = TrainingExclusions(store)
    other = next(q for q in await store.favoured_and_source_quotes(OTHER_GUILD) if q.kind == "favoured")
    with pytest.raises(UnknownQuoteError, match="no favoured quote with that id"):
        await exclusions.exclude(GUILD, "favoured", other.id)
    with pytest.raises(UnknownQuoteError):
        await exclusions.exclude(GUILD, "source", 10_000)
    with pytest.raises(StoreInputError):
        await exclusions.exclude(GUILD, "quotes; DROP TABLE quotes", 1)
    assert await exclusions.count(GUILD) == 0
    assert len(await store.favoured_and_source_quotes(OTHER_GUILD)) == 5
