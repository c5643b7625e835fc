"""benchmarks/retrain.py: a tiny model, a few seconds of fine-tuning, the table and the figures."""

import json
from pathlib import Path

from benchmarks.retrain import main
from model.checkpoint import save_checkpoint
from tests.helpers import make_tiny_model


def test_tiny_run_prints_the_table_and_writes_every_figure(tmp_path: Path, sample_vocab, capsys):
    model = tmp_path / "tiny.pt"
    meta = {"corpus": "../shared/data/absent.txt", "val_fraction": 0.1}  # not here: the model's own samples
    save_checkpoint(model, make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)
    figures = tmp_path / "figures.json"
    argv = [
        "--model",
        str(model),
        "--minutes",
        "0.03",
        "--replay-samples",
        "40",
        "--work",
        str(tmp_path / "w"),
    ]
    assert main([*argv, "--json", str(figures)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| base text | server nats before | after |")
    assert out[2].startswith("| the model's own samples |")
    got = json.loads(figures.read_text(encoding="utf-8"))
    assert got["base_source"] == "samples" and got["guild_quotes"] >= 1
    assert got["guild_current_nats"] > 0 and got["base_candidate_nats"] > 0 and len(got["samples"]) == 8
    assert (tmp_path / "w" / "bundled.replay.jsonl").is_file()
