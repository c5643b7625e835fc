"""benchmarks/bot_load.py: a small load on the real bot through the test server; every command answered."""

from pathlib import Path

import pytest

from benchmarks.bot_load import main

pytestmark = pytest.mark.discord


def test_a_small_load_answers_every_command_with_a_quote_or_busy(tiny_checkpoint: Path, capsys):
    argv = ["--checkpoint", str(tiny_checkpoint), "--users", "3", "--commands", "12", "--threads", "1"]
    # Queue 1, batch 1: most commands find the queue full and must get the polite "busy" reply.
    assert main([*argv, "--setup", "1:1", "--setup", "64:16", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "12 `!quote` commands from 3 users (4 each" in out
    rows = [line for line in out.splitlines() if line.startswith("| queue")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    small, large = cells
    assert small[:3] == ["queue 1, batch 1", "12", "12"] and large[:3] == ["queue 64, batch 16", "12", "12"]
    quotes, busy, errors, silent = (int(c) for c in small[3:7])
    assert busy > 0 and quotes + busy == 12 and errors == silent == 0
    assert large[3:7] == ["12", "0", "0", "0"]  # room for all: every command got a quote
    assert float(large[-2]) >= 0 and float(large[-1]) > 0  # loop lag and peak memory were measured
    assert out.rstrip().endswith("every command answered: yes")
