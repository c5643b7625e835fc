"""``QuoteService.check``: every rule of a request without writing it (a slash command checks before it
defers), typed options' ranges, and the cooldown turn a checked request holds until written or released.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.errors import BadOptionError, CooldownError, SeedTooLongError, ShuttingDownError, UnknownCharsError
from bot.quotes.options import QuoteOptions, check_options
from bot.quotes.service import CheckedRequest, QuoteRequest, QuoteService
from bot.serving.host import ModelHost


@pytest.fixture
async def service(tiny_checkpoint: Path):
    host = ModelHost(tiny_checkpoint, device="cpu")
    await host.start()
    yield QuoteService(host, max_seed_chars=40, max_quote_chars=120, cooldown_seconds=60)
    await host.close()


@pytest.mark.parametrize(
    ("options", "name"),
    [
        (QuoteOptions(temperature=0.05), "temperature"),
        (QuoteOptions(temperature=math.nan), "temperature"),
        (QuoteOptions(length=9), "length"),
        (QuoteOptions(length=121), "length"),
        (QuoteOptions(rng_seed=-1), "rng"),
        (QuoteOptions(rng_seed=2**63), "rng"),
    ],
)
def test_typed_options_out_of_range_are_named(options: QuoteOptions, name: str):
    with pytest.raises(BadOptionError) as caught:
        check_options(options, max_quote_chars=120)
    assert caught.value.option == name


def test_typed_options_in_range_pass():
    check_options(QuoteOptions(temperature=0.1, length=10, rng_seed=0), max_quote_chars=120)
    check_options(QuoteOptions(temperature=2.0, length=120, rng_seed=2**63 - 1), max_quote_chars=120)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (QuoteRequest("a" * 41, user_id=1), SeedTooLongError),
        (QuoteRequest("Hi \u2603", user_id=1), UnknownCharsError),
        (QuoteRequest("Hi", QuoteOptions(temperature=3.0), user_id=1), BadOptionError),
        (QuoteRequest("a" * 30, QuoteOptions(length=20), user_id=1), BadOptionError),
    ],
)
async def test_check_refuses_without_spending_the_turn(service: QuoteService, request_, error):
    with pytest.raises(error):
        await service.check(request_)
    checked = await service.check(QuoteRequest("Hi", user_id=1))  # the turn was not spent
    assert isinstance(checked, CheckedRequest) and checked.cooled


async def test_a_checked_request_holds_the_turn_until_written_or_released(service: QuoteService):
    checked = await service.check(QuoteRequest("Hi", QuoteOptions(length=30), user_id=1))
    assert checked.cap == 30 and checked.model_seed == "Hi"
    with pytest.raises(CooldownError):  # a second request of the same user, before the first is written
        await service.check(QuoteRequest("Hi", user_id=1))
    service.release(checked)
    again = await service.check(QuoteRequest("Hi", user_id=1))
    result = await service.write(again)  # the checked request is written, not checked twice
    assert result.reply.startswith("Hi")
    with pytest.raises(CooldownError):
        await service.check(QuoteRequest("Hi", user_id=1))


async def test_check_refuses_once_closing(service: QuoteService):
    await service.close()
    with pytest.raises(ShuttingDownError):
        await service.check(QuoteRequest("Hi", user_id=1))
