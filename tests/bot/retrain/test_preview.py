"""!retrain preview's text and the quote ids !retrain exclude takes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.retrain.preview import BadQuoteRefError, label, parse_quote_ref, plan_for, preview_text
from bot.storage.training_data import TrainingQuote
from model.vocab import Vocab

WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)
VOCAB = Vocab.from_texts(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!'"])


def quote(kind: str, qid: int, text: str) -> TrainingQuote:
    votes = 2 if kind == "favoured" else None
    return TrainingQuote(kind, qid, text, 1, votes, None, None, WHEN)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ref"), [("a12", ("source", 12)), (" F7 ", ("favoured", 7)), ("#a3", ("source", 3))]
)
def test_quote_refs(text: str, ref: tuple[str, int]):
    assert parse_quote_ref(text) == ref


@pytest.mark.parametrize("text", ["12", "b3", "a", "a-1", "a1; DROP", ""])
def test_bad_quote_refs_get_a_clear_answer(text: str):
    with pytest.raises(BadQuoteRefError, match="`a12`"):
        parse_quote_ref(text)


def test_preview_shows_counts_new_characters_and_a_sample_with_ids():
    quotes = [
        quote("favoured", 4, "Attempt 47 starts now <@123456789>"),
        quote("source", 1, "Run 4 ends, see https://clips.example/x"),
        quote("source", 2, "Café break, back in 5"),
    ]
    text = preview_text(quotes, excluded=1, min_quotes=20, plan=plan_for(quotes, VOCAB), wait_s=600)
    assert "learn from 3 quotes: 1 favoured and 2 added (1 left out" in text
    assert "too few: a retrain needs 20" in text and "cooldown ends in 10 min" in text
    assert "'4' (2 quotes)" in text  # the two-quote rule, said before the run
    assert "replaced: 'é' -> 'e'" in text
    assert "dropped: '5', '7', '@'" in text  # in one quote each, with no stand-in
    assert "`f4` Attempt 47 starts now @someone" in text  # as training sees it: the mention made readable
    assert "`a1` Run 4 ends, see" in text and "https" not in text
    assert label(quotes[1]) == "a1"
    assert len(text) < 2000
