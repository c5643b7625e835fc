"""benchmarks/generate.py: fixed-length rows, the host's real chain, the FLOP count, a tiny full run."""

from pathlib import Path

from benchmarks.generate import SEED_TEXT, host_run, lstm_step_flops, main
from model.network import CharLSTM, ModelConfig


def test_step_flops_count_both_gate_products_and_the_head():
    model = CharLSTM(ModelConfig(vocab_size=10, embed_dim=4, hidden_size=8, num_layers=2))
    # layer 0: 4 gates x 8 units x (4 inputs + 8 recurrent); layer 1: 4 x 8 x (8 + 8); head: 8 x 10.
    per_row = 2 * (4 * 8 * 12 + 4 * 8 * 16 + 8 * 10)
    assert lstm_step_flops(model, 3) == 3 * per_row


async def test_host_rows_run_every_quote_to_its_full_length(tiny_checkpoint: Path):
    chars, seconds, lag = await host_run(tiny_checkpoint, "cpu", 1, 5, 30, 1)
    assert chars == 5 * (30 - len(SEED_TEXT))  # end-of-quote masked, the loop guard never fired
    assert seconds > 0 and lag >= 0


def test_a_tiny_run_prints_every_row_and_the_targets(tiny_checkpoint: Path, capsys):
    argv = ["--checkpoint", str(tiny_checkpoint), "--lengths", "12", "--concurrency", "1", "4"]
    assert main([*argv, "--repeats", "1", "--steps", "3", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    speeds, targets = out.split("targets (issue 9)")
    assert out.startswith("machine: ") and "torch " in out.splitlines()[0]
    rows = {line.split("|")[1].strip(): line for line in speeds.splitlines() if line.startswith("| (")}
    assert list(rows) == [
        "(a) naive re-run",
        "(b) naive carried state",
        "(c) ours, batch 1",
        "(c+) ours, batch 1, bot's chain",
        "(d) host, 1 concurrent",
        "(d) host, 4 concurrent",
    ]
    assert rows["(a) naive re-run"].split("|")[4].strip() == "1.0x"  # (a) against itself
    assert rows["(d) host, 4 concurrent"].split("|")[6].strip()  # the loop lag is shown for the host
    assert "matrix multiply 2048x2048" in speeds and "| cell (auto)" in speeds
    assert "| 1 (default)" in speeds  # the executor's thread counts, the default marked
    for target in ("(c) vs (a) per character at 12", "(c) vs (b)", "step at batch 32", "lag p99"):
        assert target in targets
    assert "32 concurrent vs 1" not in targets  # this run had no 32 concurrent row to compare
