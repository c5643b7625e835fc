"""training.trainer and ``python -m training train | evaluate``: tiny real models on the sample corpus."""

import json

import pytest

from model.checkpoint import load_checkpoint
from tests.helpers import SAMPLE_CORPUS, make_tiny_model
from training.__main__ import main
from training.batching import encode_quotes
from training.corpus import corpus_fingerprint, split_quotes
from training.metrics import read_metrics
from training.scoring import score_quotes
from training.trainer import TrainSettings, lr_at, state_path_for, train_model

TINY = ["--hidden", "32", "--embed", "16", "--batch-size", "32", "--progress", "none"]
TINY += ["--voice-samples", "16"]  # the voice fit is tests/model/test_training_voice.py's subject


@pytest.fixture
def split(sample_quotes, sample_vocab):
    train, val = split_quotes(sample_quotes, 0.1)
    return encode_quotes(train, sample_vocab), encode_quotes(val, sample_vocab)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    s = TrainSettings(epochs=1, lr=1e-2, warmup_steps=10, min_lr_ratio=0.1)
    warm = [lr_at(s, step, 0.0) for step in range(10)]
    assert warm == sorted(warm) and warm[-1] == pytest.approx(1e-2)
    decay = [lr_at(s, 100, p / 10) for p in range(11)]
    assert decay == sorted(decay, reverse=True)
    assert decay[-1] == pytest.approx(1e-3) and lr_at(s, 100, 2.0) == pytest.approx(1e-3)


def test_settings_need_a_budget_and_sane_values():
    with pytest.raises(ValueError, match="give a budget"):
        TrainSettings()
    with pytest.raises(ValueError, match="--minutes must be above 0"):
        TrainSettings(minutes=0)
    with pytest.raises(ValueError, match="--batch-size must be at least 1"):
        TrainSettings(epochs=1, batch_size=0)


def test_training_lowers_validation_loss_and_keeps_the_best(tmp_path, sample_vocab, split):
    train_ids, val_ids = split
    model = make_tiny_model(sample_vocab, dropout=0.0)
    before = score_quotes(model, val_ids).nats
    settings = TrainSettings(epochs=6, batch_size=32, lr=1e-2, warmup_steps=5, eval_every=10, progress="none")
    out = tmp_path / "run" / "pat.pt"
    result = train_model(model, sample_vocab, train_ids, val_ids, settings, out, metadata={"note": "x"})
    assert result.best_nats < before - 0.5
    assert result.stopped == "epochs"
    loaded = load_checkpoint(out)
    vals = [r["val_nats"] for r in result.history]
    assert loaded.metadata["val_nats"] == pytest.approx(min(vals)) == pytest.approx(result.best_nats)
    assert loaded.metadata["note"] == "x" and loaded.metadata["parameters"] == model.num_parameters()
    assert score_quotes(loaded.model, val_ids).nats == pytest.approx(result.best_nats, abs=1e-5)
    events = [r["event"] for r in read_metrics(tmp_path / "run" / "pat.metrics.jsonl")]
    assert {"train", "val", "done"} <= set(events)
    assert (tmp_path / "run" / "pat.loss.png").read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "run").glob("*.tmp"))  # atomic writes leave no temporary files


def test_early_stop_when_validation_stops_improving(tmp_path, sample_vocab, split):
    settings = TrainSettings(epochs=50, lr=1e-9, eval_every=2, patience=2, progress="none")
    result = train_model(make_tiny_model(sample_vocab), sample_vocab, *split, settings, tmp_path / "m.pt")
    assert result.stopped == "early"
    assert result.steps == 6  # validations at 2 (best), 4 and 6 (no gain twice)


def test_time_budget_stops_the_run(tmp_path, sample_vocab, split):
    # Warm up first: a process's first LSTM step and first AdamW step pay one-off set-up costs.
    warm_up = TrainSettings(epochs=0.1, progress="none")
    train_model(make_tiny_model(sample_vocab), sample_vocab, *split, warm_up, tmp_path / "warm.pt")
    settings = TrainSettings(minutes=0.02, eval_every=10_000, progress="none")
    result = train_model(make_tiny_model(sample_vocab), sample_vocab, *split, settings, tmp_path / "m.pt")
    assert result.stopped == "budget"
    assert 1.2 <= result.seconds < 6.0  # one step past the budget at most; slack for a busy machine


def test_resume_continues_the_step_count(tmp_path, sample_vocab, split):
    out = tmp_path / "m.pt"
    settings = TrainSettings(epochs=1, batch_size=64, eval_every=3, progress="none")
    first = train_model(make_tiny_model(sample_vocab), sample_vocab, *split, settings, out)
    assert state_path_for(out).is_file()
    settings.epochs = 2
    second = train_model(
        make_tiny_model(sample_vocab, seed=9), sample_vocab, *split, settings, out, resume=out
    )
    assert second.steps == 2 * first.steps
    steps = [r["step"] for r in read_metrics(tmp_path / "m.metrics.jsonl") if r["event"] == "val"]
    assert steps == sorted(steps) and steps[-1] == second.steps


def test_cli_train_then_evaluate_scores_the_same_split(tmp_path, capsys, sample_quotes):
    out = tmp_path / "pat.pt"
    code = main(["train", "--corpus", str(SAMPLE_CORPUS), "--epochs", "2", "--out", str(out), *TINY])
    assert code == 0
    meta = load_checkpoint(out).metadata
    assert meta["corpus"] == "data/sample_quotes.txt" and meta["corpus_format"] == "lines"
    assert meta["corpus_fingerprint"] == corpus_fingerprint(sample_quotes)
    assert meta["train_command"].startswith("python -m training train --corpus")
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--json"]) == 0  # corpus taken from the checkpoint
    result = json.loads(capsys.readouterr().out)
    assert result["same_corpus_as_training"] is True
    assert result["nats_per_char"] == pytest.approx(meta["val_nats"], abs=1e-4)
    assert main(["evaluate", "--checkpoint", str(out), "--corpus", str(SAMPLE_CORPUS), "--whole"]) == 0
    assert "bits/char" in capsys.readouterr().out


def test_cli_jsonl_progress_is_machine_readable(tmp_path, capsys):
    args = ["train", "--corpus", str(SAMPLE_CORPUS), "--epochs", "1", "--out", str(tmp_path / "m.pt"), *TINY]
    args[args.index("none")] = "jsonl"
    assert main([*args, "--eval-every", "4"]) == 0
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events[0] == "info" and "val" in events


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--corpus", str(tmp_path / "none.txt"), "--epochs", "1", "--out", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none.txt: no such file" in err
    assert main(["train", "--corpus", str(SAMPLE_CORPUS), "--out", "x.pt"]) == 2
    assert "give a budget" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
