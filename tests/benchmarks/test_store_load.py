"""benchmarks/store_load.py: a small run on both backends, every quote and vote counted once."""

from __future__ import annotations

import pytest

from benchmarks.store_load import main


@pytest.mark.slow
def test_a_small_load_loses_nothing_on_either_backend(postgres_url: str, capsys):
    argv = ["--writers", "2", "--quotes", "10", "--votes", "20", "--concurrency", "4"]
    assert main([*argv, "--postgres", postgres_url]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| SQLite", "| PostgreSQL"))]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[3:] == ["20/20", "40/40", "0"]  # quotes, distinct votes (doubles counted once), errors
        assert float(cells[1].replace(",", "")) > 0 and float(cells[2].replace(",", "")) > 0
    assert out.rstrip().endswith("none lost: yes")
