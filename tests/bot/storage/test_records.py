"""bot/storage/records.py: the checks on ids, counts, texts and vote emoji."""

from __future__ import annotations

import pytest

from bot.errors import QuotebotError
from bot.storage.records import (
    ForgetResult,
    StoreBusyError,
    StoreError,
    StoreInputError,
    UnknownQuoteError,
    check_count,
    check_id,
    check_optional_id,
    check_text,
    normalise_emoji,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("⭐", "⭐"),
        (" 🔥 ", "🔥"),
        ("👍🏽", "👍🏽"),  # with a skin-tone modifier
        ("👨‍👩‍👧", "👨‍👩‍👧"),  # a zero-width-joiner sequence
        ("1️⃣", "1️⃣"),  # a keycap
        ("🇫🇷", "🇫🇷"),  # a flag
        ("<:pat_star:123456789012345678>", "pat_star:123456789012345678"),
        ("<a:dance:987654321098765432>", "dance:987654321098765432"),
        ("pat_star:123456789012345678", "pat_star:123456789012345678"),
    ],
)
def test_emoji_are_stored_in_one_form(given: str, stored: str) -> None:
    assert normalise_emoji(given) == stored


@pytest.mark.parametrize(
    "bad", ["", "   ", "star", "⭐ ⭐", "a⭐", "<:x:12>", "DROP TABLE", "⭐" * 17, None, 5]
)
def test_things_that_are_not_emoji_are_refused(bad: object) -> None:
    with pytest.raises(StoreInputError, match="is not an emoji; give one emoji such as ⭐"):
        normalise_emoji(bad)


def test_a_short_name_gets_a_hint() -> None:
    with pytest.raises(StoreInputError, match=":star: is an emoji's short name; send the emoji itself"):
        normalise_emoji(":star:")


def test_ids_counts_and_texts() -> None:
    assert check_id("user_id", 0) == 0 and check_id("user_id", 2**63 - 1) == 2**63 - 1
    for bad in (-1, 2**63, 1.0, "1", True, None):
        with pytest.raises(StoreInputError, match=r"user_id must be a non-negative integer id, got"):
            check_id("user_id", bad)
    assert check_optional_id("guild_id", None) is None
    assert check_count("n", 100, 1, 100) == 100
    with pytest.raises(StoreInputError, match="n must be a whole number from 1 to 100, got 0"):
        check_count("n", 0, 1, 100)
    with pytest.raises(StoreInputError, match="n must be a whole number of at least 1, got False"):
        check_count("n", False, 1)
    assert check_text("text", " x ") == " x "
    with pytest.raises(StoreInputError, match="text is 4 characters long; the limit is 3"):
        check_text("text", "abcd", 3)
    assert issubclass(StoreInputError, ValueError) and issubclass(StoreInputError, StoreError)


def test_forget_result_total() -> None:
    assert ForgetResult(1, 2, 3, 4, 5).total == 15
    assert ForgetResult(1, 2, 3, 4, 5, retrains_unlinked=6, schedules_unlinked=7).total == 28


def test_errors_meant_for_users_are_quotebot_errors() -> None:
    # The bot's one error handler shows a QuotebotError's message as it is; anything else is logged as a bug.
    for error in (StoreBusyError, StoreInputError, UnknownQuoteError):
        assert issubclass(error, StoreError) and issubclass(error, QuotebotError)
    assert not issubclass(StoreError, QuotebotError)  # a damaged file is the operator's problem
    busy = StoreBusyError("/srv/quotes.db", 2.5)
    assert busy.path == "/srv/quotes.db" and "/srv" not in str(busy)  # no server paths in a Discord reply
    assert str(busy) == (
        "the quote database is busy (another program kept it locked for 2.5 s), so nothing was saved; "
        "try again in a moment."
    )
