"""training.finetune: vocabulary growth that keeps old logits, replay of the base corpus, the CLI."""

import json
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.vocab import BOS_ID
from tests.helpers import SAMPLE_CORPUS, make_tiny_model
from training.__main__ import main
from training.base_text import BaseText
from training.corpus import split_quotes
from training.finetune import drift_guard, grow_for, split_new

TINY = ["--batch-size", "32", "--progress", "none", "--voice-samples", "16"]  # the fit: test_training_voice
NEW_QUOTES = [
    "Ünïcode is my love language, said nobody €ver.",
    "The printer jammed again; I have named it Günther.",
    "Hey, the budget is 5€ and a dream.",
    "Look, I only speak in spreadsheets after noon.",
    "Honestly, the stapler and I are on a break.",
    "Are we back to the Zürich office plan?",
    "I put the meeting on mute and the meeting put me on mute.",
    "Hey, who moved my chair two inches to the left?",
    "Every Friday I promise myself a clean inbox.",
    "The fire drill was the most organised we have ever been.",
]


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory) -> Path:
    """A tiny model trained briefly on the sample corpus, recording it as its corpus."""
    out = tmp_path_factory.mktemp("base") / "base.pt"
    args = ["train", "--corpus", str(SAMPLE_CORPUS), "--epochs", "1", "--hidden", "32", "--embed", "16"]
    assert main([*args, "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def new_corpus(tmp_path) -> Path:
    path = tmp_path / "guild.jsonl"
    rows = [{"character": "Pat", "text": q} for q in NEW_QUOTES] + [{"character": "Sam", "text": "Nope."}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_growing_keeps_old_ids_and_old_logits_for_old_text(sample_vocab, sample_quotes):
    model = make_tiny_model(sample_vocab).eval()
    old_ids = torch.tensor([[BOS_ID, *sample_vocab.encode(sample_quotes[0])]])
    before, _ = model(old_ids)
    grown = grow_for(model, sample_vocab, ["Zürich costs 5€"])
    assert grown.chars[: len(sample_vocab.chars)] == sample_vocab.chars
    assert set(grown.chars[len(sample_vocab.chars) :]) == set("Zürich costs 5€") - set(sample_vocab.chars)
    assert model.config.vocab_size == len(grown)
    after, _ = model(old_ids)
    assert torch.equal(after[..., : len(sample_vocab)], before)
    # The new characters start unlikely, so old text's probabilities barely move.
    drift = (after.log_softmax(-1)[..., : len(sample_vocab)] - before.log_softmax(-1)).abs().max()
    assert drift < 0.05


def test_split_new_always_holds_one_out():
    train, val = split_new(["one quote", "another quote"], 0.1)
    assert len(val) == 1 and len(train) == 1
    assert split_new(["another quote", "one quote"], 0.1)[1] == val  # order does not matter
    big = [f"quote number {i}" for i in range(200)]
    assert split_new(big, 0.1) == split_quotes(big, 0.1)


def test_finetune_grows_vocab_replays_base_and_beats_its_parent(
    base_checkpoint, new_corpus, tmp_path, capsys
):
    out = tmp_path / "guild.pt"
    args = [
        "finetune",
        "--from",
        str(base_checkpoint),
        "--corpus",
        str(new_corpus),
        "--where",
        "character=Pat",
    ]
    args += ["--out", str(out), "--epochs", "20", "--lr", "1e-2", "--warmup-steps", "2", "--eval-every", "2"]
    assert main([*args, "--progress", "jsonl"]) == 0
    parent, child = load_checkpoint(base_checkpoint), load_checkpoint(out)
    assert child.vocab.chars[: len(parent.vocab.chars)] == parent.vocab.chars
    # The two-quote rule: '€' and 'ü' are in two quotes each and join; 'Ü' and 'ï' (one quote) get
    # their stand-ins 'U' and 'i' instead.
    assert {"€", "ü"} <= set(child.vocab.chars) and not {"Ü", "ï"} & set(child.vocab.chars)
    meta = child.metadata
    assert meta["new_chars"] == "ü€"
    assert meta["parent"] == str(base_checkpoint) and meta["base_corpus"] == "data/sample_quotes.txt"
    assert meta["replay_source"] == "corpus"
    train_new, _ = split_new([q for q in NEW_QUOTES], 0.1)
    assert meta["replay_quotes"] == round(len(train_new) * 0.3 / 0.7)
    assert meta["val_nats"] < meta["parent_val_nats"]
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any("replay" in m.get("message", "") for m in messages)


def test_replay_only_draws_the_base_training_side(base_checkpoint, new_corpus, tmp_path, monkeypatch):
    from training import finetune

    seen = {}
    real = finetune.train_model

    def spy(model, vocab, train_ids, *rest, **kwargs):
        seen["train"] = {vocab.decode(ids) for ids in train_ids}
        return real(model, vocab, train_ids, *rest, **kwargs)

    monkeypatch.setattr(finetune, "train_model", spy)
    out = tmp_path / "g.pt"
    args = ["finetune", "--from", str(base_checkpoint), "--corpus", str(new_corpus), "--out", str(out),
            "--epochs", "1", "--replay-share", "0.9"]  # fmt: skip
    assert main([*args, *TINY]) == 0
    base_quotes = [q for q in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if q.strip()]
    base_train, base_val = split_quotes(base_quotes, 0.1)
    replayed = seen["train"] & set(base_quotes)
    assert replayed and replayed <= set(base_train) and not replayed & set(base_val)


def test_missing_replay_corpus_and_bad_options(base_checkpoint, new_corpus, tmp_path, capsys):
    common = [
        "finetune",
        "--from",
        str(base_checkpoint),
        "--corpus",
        str(new_corpus),
        "--out",
        str(tmp_path / "x.pt"),
    ]
    assert main([*common, "--epochs", "1", "--replay-share", "1.0", *TINY]) == 2
    assert "--replay-share must be in [0, 1)" in capsys.readouterr().err
    assert main([*common, "--epochs", "1", "--replay-corpus", str(tmp_path / "gone.txt"), *TINY]) == 2
    assert "gone.txt: no such file" in capsys.readouterr().err
    one = tmp_path / "one.txt"
    one.write_text("Just one quote.\n", encoding="utf-8")
    common[4] = str(one)
    assert main([*common, "--epochs", "1", *TINY]) == 2
    assert "needs at least 2 quotes" in capsys.readouterr().err


def test_recorded_corpus_missing_here_means_generative_replay_cached_beside_the_parent(
    tmp_path, new_corpus, capsys
):
    corpus = tmp_path / "gone.txt"
    corpus.write_text(SAMPLE_CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    base = tmp_path / "base.pt"
    train = ["train", "--corpus", str(corpus), "--epochs", "1", "--hidden", "16", "--embed", "8"]
    assert main([*train, "--out", str(base), *TINY]) == 0
    corpus.unlink()
    out = tmp_path / "ft.pt"
    finetune = ["finetune", "--from", str(base), "--corpus", str(new_corpus), "--out", str(out)]
    finetune += ["--epochs", "1", "--replay-samples", "60"]
    assert main([*finetune, "--progress", "jsonl"]) == 0
    said = capsys.readouterr().out
    assert "is not on this machine; using the model's own samples" in said
    cache = tmp_path / "base.replay.jsonl"
    assert cache.is_file() and "drawing 60 samples of base.pt" in said
    meta = load_checkpoint(out).metadata
    assert meta["replay_source"] == "samples" and meta["replay_quotes"] > 0
    assert "base_corpus" not in meta and "replay_corpus" not in meta
    # A second run reuses the cache: same samples, nothing drawn.
    written = cache.stat().st_mtime_ns
    assert main([*finetune, "--out", str(tmp_path / "ft2.pt"), "--progress", "jsonl"]) == 0
    assert "drawing" not in capsys.readouterr().out and cache.stat().st_mtime_ns == written


def test_the_drift_guard_refuses_a_model_that_moved_too_far_on_base_text(sample_vocab, sample_quotes):
    model = make_tiny_model(sample_vocab, layers=1)
    base = BaseText("samples", "x", train=sample_quotes[:60], val=[])
    guard = drift_guard(model, sample_vocab, base, replayed=sample_quotes[:10], margin=0.01)
    assert guard() == (True, {"base_drift": 0.0})  # unchanged: kept
    with torch.no_grad():
        model.head.bias.add_(torch.randn_like(model.head.bias) * 5)  # confidently wrong
    kept, figures = guard()
    assert not kept and figures["base_drift"] > 0.01


def test_finetune_keeps_nothing_when_every_checkpoint_drifted(base_checkpoint, new_corpus, tmp_path, capsys):
    out = tmp_path / "guarded.pt"
    args = ["finetune", "--from", str(base_checkpoint), "--corpus", str(new_corpus), "--out", str(out)]
    args += ["--epochs", "3", "--lr", "5e-2", "--warmup-steps", "1", "--eval-every", "1", *TINY]
    assert main([*args, "--replay-share", "0.5", "--base-margin", "100"]) == 0
    assert load_checkpoint(out).metadata["base_margin"] == 100
    out.unlink()
    assert main([*args, "--replay-share", "0.5", "--base-margin", "1e-12", "--lr", "1"]) == 2
    assert "every checkpoint drifted more than 1e-12 nats/char" in capsys.readouterr().err
    assert not out.exists()


def test_a_new_voice_is_not_held_to_the_parent_by_default(base_checkpoint, new_corpus, tmp_path):
    """The README's recipe for another character (no --base-margin) keeps its best checkpoint however
    far it moved from the parent: leaving the parent's voice is the point (the bot's retrain sets one)."""
    out = tmp_path / "new-voice.pt"
    args = ["finetune", "--from", str(base_checkpoint), "--corpus", str(new_corpus), "--out", str(out)]
    args += ["--epochs", "3", "--lr", "1", "--warmup-steps", "1", "--eval-every", "1"]
    assert main([*args, "--replay-share", "0.5", *TINY]) == 0
    assert out.is_file() and "base_margin" not in load_checkpoint(out).metadata
