"""training.judge: the figures of a candidate against the current model, and the promotion rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bot.storage.store import Store
from model.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import GUILD, fill_store, make_tiny_model
from training.base_text import base_text
from training.judge import base_slice, judge, main
from training.verdict import decide

GOOD = {
    "base_current_nats": 2.00,
    "base_candidate_nats": 2.01,
    "loop_current": 0.05,
    "loop_candidate": 0.08,
    "loop_seeds": 24,
}


def test_promote_within_the_margin_and_the_loop_target():
    verdict = decide(GOOD, margin=0.02, loop_target=0.1)
    assert verdict.promote
    assert "2.010 nats/char against 2.000" in verdict.reasons[0] and "within" in verdict.reasons[0]
    assert "8% of 24 seeds" in verdict.reasons[1]


@pytest.mark.parametrize(
    ("changes", "margin", "words"),
    [
        ({"base_candidate_nats": 2.05}, 0.02, "worse than the margin"),
        ({}, -math.inf, "worse than the margin"),  # no candidate can be that much better
        ({"base_candidate_nats": math.nan}, 0.02, "worse than the margin"),
        ({"base_current_nats": None, "base_candidate_nats": None}, 0.02, "no base text was scored"),
        ({"loop_candidate": 0.2}, 0.02, "too many"),
    ],
)
def test_reject_with_the_reason(changes: dict, margin: float, words: str):
    verdict = decide({**GOOD, **changes}, margin=margin, loop_target=0.1)
    assert not verdict.promote
    assert any(words in reason for reason in verdict.reasons)


def test_a_current_model_above_the_target_only_must_not_get_worse():
    above = {**GOOD, "loop_current": 0.3}
    assert decide({**above, "loop_candidate": 0.25}, 0.02, 0.1).promote
    assert not decide({**above, "loop_candidate": 0.35}, 0.02, 0.1).promote


@pytest.fixture
def current(tmp_path: Path, sample_vocab) -> Path:
    meta = {"corpus": "data/sample_quotes.txt", "val_fraction": 0.1}
    return save_checkpoint(
        tmp_path / "current.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta
    )


def test_same_model_same_figures(current: Path, sample_quotes: list[str]):
    loaded = load_checkpoint(current)
    text = base_text(loaded, current)
    base = base_slice(text, limit=20)
    assert text.kind == "corpus" and text.where.endswith("sample_quotes.txt") and len(base) == 20
    figures = judge(loaded, loaded, sample_quotes[:5], base, max_chars=40, seeds=6)
    assert figures["base_quotes"] == 20 and figures["guild_quotes"] == 5 and figures["loop_seeds"] == 6
    assert figures["base_candidate_nats"] == figures["base_current_nats"] > 0
    assert figures["loop_candidate"] == figures["loop_current"]  # same seeds, same random streams
    assert decide(figures, margin=0.0, loop_target=0.0).promote


def test_a_worse_candidate_scores_worse(current: Path, tmp_path: Path, sample_vocab, sample_quotes):
    loaded = load_checkpoint(current)
    worse = make_tiny_model(sample_vocab, layers=1)
    for parameter in worse.parameters():
        parameter.data.mul_(25.0)  # wild weights: confident and wrong
    candidate = load_checkpoint(save_checkpoint(tmp_path / "worse.pt", worse, sample_vocab, {}))
    base = base_slice(base_text(loaded, current), limit=20)
    figures = judge(candidate, loaded, sample_quotes[:5], base, max_chars=40, seeds=4)
    assert figures["base_candidate_nats"] > figures["base_current_nats"] + 1.0
    assert not decide(figures, margin=0.02, loop_target=1.0).promote


async def test_cli_reads_the_guilds_held_out_quotes_and_prints_a_verdict(
    current: Path, tmp_path: Path, sample_quotes: list[str], capsys: pytest.CaptureFixture
):
    store = await Store.open(tmp_path / "quotes.db")
    await fill_store(store, sample_quotes)
    await store.close()
    argv = ["--candidate", str(current), "--current", str(current), "--db", str(tmp_path / "quotes.db")]
    argv += ["--guild", str(GUILD), "--max-chars", "40", "--seeds", "4", "--threads", "1", "--json"]
    assert main([*argv, "--margin", "0", "--loop-target", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["event"] == "judged" and out["promote"] is True
    assert out["guild_quotes"] >= 1 and out["base_quotes"] >= 1 and out["base_source"] == "corpus"
    assert out["base_text"] == "the base corpus data/sample_quotes.txt"
    assert main([*argv, "--base-corpus", str(tmp_path / "nowhere.txt"), "--margin", "0"]) == 2
    assert "nowhere.txt: no such file" in capsys.readouterr().err  # a corpus asked for must be there


def test_cli_bad_checkpoint_is_one_error_line(tmp_path: Path, current: Path, capsys: pytest.CaptureFixture):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code = main(["--candidate", str(broken), "--current", str(current), "--corpus", "data/sample_quotes.txt"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "broken.pt" in err


def test_unseen_characters_never_fail_the_judge_and_cost_the_current_model_the_stated_price(
    current: Path, tmp_path: Path, sample_vocab
):
    """Digits and emoji the current model never saw: both are scored on the whole text, no error."""
    loaded = load_checkpoint(current)
    grown_vocab = sample_vocab.grow(["0123456789🎮"])
    grown = make_tiny_model(grown_vocab, layers=1)
    candidate = load_checkpoint(save_checkpoint(tmp_path / "grown.pt", grown, grown_vocab, {}))
    server = ["Attempt 47 🎮", "PB 41:07, 2 AM 🎮", "3 phases, 0 patience"]  # every quote has one
    assert all(loaded.vocab.missing(q) for q in server)
    base = base_slice(base_text(loaded, current), limit=10)
    figures = judge(candidate, loaded, server, base, max_chars=40, seeds=4)
    assert figures["guild_quotes"] == 3 and figures["guild_unknown_chars"] > 0
    cost = figures["unknown_char_cost"]
    assert cost == pytest.approx(math.log(len(grown_vocab)))
    # The current model pays at least the stated cost per unknown character, spread over all characters.
    chars = sum(len(q) + 1 for q in server)
    assert figures["guild_current_nats"] >= cost * figures["guild_unknown_chars"] / chars
    assert math.isfinite(figures["guild_candidate_nats"])
    assert figures["loop_seeds"] == 4
