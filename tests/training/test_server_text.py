"""training.server_text: Discord markup made readable, URLs dropped, and the two-quote rule."""

from __future__ import annotations

import pytest

from model.vocab import Vocab
from training.corpus import normalise
from training.server_text import clean_markup, plan_new_characters


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("thanks <@123456789012345678>!", "thanks @someone!"),
        ("ask <@!42> or <@&77> in <#99>", "ask @someone or @role in #channel"),
        ("gg <:pog:112233> <a:dance:445566>", "gg :pog: :dance:"),
        ("see https://example.com/x?y=1 and www.test.org now", "see and now"),
        ("at <t:1700000000:R> we start", "at we start"),
        ("no markup, 3 digits 123 and café 🎮", "no markup, 3 digits 123 and café 🎮"),
    ],
)
def test_markup_is_readable_and_urls_are_dropped(raw: str, clean: str):
    assert normalise(raw) == clean  # normalise applies clean_markup, then collapses spaces
    assert " ".join(clean_markup(raw).split()) == clean


def test_curly_quotes_become_plain_and_accents_digits_emoji_stay():
    assert normalise("“Zoë’s 2nd café” 🐧") == '"Zoë\'s 2nd café" 🐧'


def test_a_new_character_joins_only_when_two_quotes_use_it():
    vocab = Vocab.from_texts(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!"])
    quotes = ["attempt 4 🎮", "run 4 dead 🎮", "café time", "one 🐧 here", "Zoë waves"]
    plan = plan_new_characters(quotes, vocab)
    assert plan.joining == {"4": 2, "🎮": 2}
    assert plan.replaced == {"é": "e", "ë": "e"}  # rare, with an obvious stand-in
    assert plan.dropped == ["🐧"]  # rare, and nothing stands in for it
    assert plan.apply(quotes) == ["attempt 4 🎮", "run 4 dead 🎮", "cafe time", "one here", "Zoe waves"]
    summary = plan.summary()
    assert "'4' (2 quotes)" in summary and "'é' -> 'e'" in summary and "dropped: '🐧'" in summary


def test_same_character_twice_in_one_quote_is_still_one_quote():
    vocab = Vocab.from_texts(["abc "])
    plan = plan_new_characters(["a 🎮🎮 b"], vocab)
    assert plan.joining == {} and plan.dropped == ["🎮"]
    assert plan.apply(["a 🎮🎮 b", "🎮"]) == ["a b"]  # a quote left empty goes
