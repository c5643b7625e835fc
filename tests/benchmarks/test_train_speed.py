"""benchmarks/train_speed.py: the naive windows, and a tiny full run printing both rows."""

import pytest

from benchmarks.train_speed import STEP, WINDOW, main, windows
from tests.helpers import SAMPLE_CORPUS


def test_windows_are_101_ids_every_50():
    stream = list(range(400))
    rows = windows(stream)
    assert rows.shape[1] == WINDOW + 1
    assert rows[:, 0].tolist() == list(range(0, 400 - WINDOW - 1, STEP))
    assert rows[1].tolist() == list(range(STEP, STEP + WINDOW + 1))


def test_tiny_run_prints_a_row_per_loop(capsys):
    assert (
        main(["--corpus", str(SAMPLE_CORPUS), "--minutes", "0.02", "--hidden", "16", "--batch-size", "16"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| loop | chars/s |")
    naive, ours = out[2], out[3]
    assert naive.startswith("| naive") and ours.startswith("| ours")
    for row in (naive, ours):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[-1]) == pytest.approx(float(cells[-2]) / 0.6931, rel=1e-2)  # bits = nats / ln 2
