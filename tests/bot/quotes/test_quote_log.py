"""bot/quotes/quote_log.py against a real SQLite file: quotes stored whole, failures logged and never
raised."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.quotes.quote_log import QuoteLog, quote_settings
from bot.storage.store import Store
from model.sampling import SamplingConfig


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "quotes.db") as store:
        yield store


def remember_args(**changes) -> dict:
    args = {
        "guild_id": 1,
        "channel_id": 2,
        "user_id": 3,
        "seed": "Hey,",
        "text": "Hey, the coffee machine.",
        "settings": quote_settings(SamplingConfig(temperature=0.5), 120, 42, "end"),
        "model_version": "default",
    }
    return {**args, **changes}


def test_quote_settings_hold_every_knob_and_the_request():
    settings = quote_settings(SamplingConfig(temperature=0.5), 120, 42, "length")
    assert settings["temperature"] == 0.5 and settings["min_p"] == SamplingConfig().min_p
    assert (settings["max_chars"], settings["rng_seed"], settings["stopped"]) == (120, 42, "length")


async def test_remember_then_record_the_message(store: Store):
    log = QuoteLog(store)
    quote_id = await log.remember(**remember_args())
    assert quote_id is not None
    assert await log.record_message(quote_id, channel_id=2, message_id=77)
    stored = await store.quote_by_message(77)
    assert (
        stored is not None and stored.text == "Hey, the coffee machine." and stored.settings["rng_seed"] == 42
    )


async def test_an_empty_quote_is_not_stored(store: Store):
    assert await QuoteLog(store).remember(**remember_args(seed="", text="  ")) is None
    assert await store.get_quote(1) is None


async def test_a_failure_is_logged_not_raised(store: Store, caplog: pytest.LogCaptureFixture):
    log = QuoteLog(store)
    with caplog.at_level(logging.WARNING, logger="bot.quotes.quote_log"):
        # A store refusal (settings that are not JSON) and a bug (a closed connection) both return None.
        assert await log.remember(**remember_args(settings={"x": object()})) is None
        assert not await log.record_message(123, channel_id=2, message_id=5)  # no such quote
        await store.close()
        assert await log.remember(**remember_args()) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("not stored" in m and "plain JSON" in m for m in messages)
    assert any("message 5 not recorded" in m for m in messages)
    assert any("unexpected error" in m and "storing a quote" in m for m in messages)
