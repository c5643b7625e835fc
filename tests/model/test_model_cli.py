"""`python -m model`: sampling and info from the command line, and one-line errors."""

import json
import subprocess
import sys

import pytest

from model.__main__ import main
from tests.helpers import REPO


def test_sample_jsonl_gives_n_completions_per_seed(tiny_checkpoint, capsys):
    code = main(["sample", "--checkpoint", str(tiny_checkpoint), "--n", "2", "--jsonl", "--seed-rng", "3",
                 "--max-chars", "30", "Hey,", "I"])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seed"] for r in rows] == ["Hey,", "Hey,", "I", "I"]
    for row in rows:
        assert row["text"].startswith(row["seed"])
        assert row["stopped"] in {"end", "length", "loop"}
        assert len(row["text"]) <= 30


def test_greedy_sampling_is_the_same_every_time(tiny_checkpoint, capsys):
    args = ["sample", "--checkpoint", str(tiny_checkpoint), "--greedy", "--max-chars", "25", "The"]
    main(args)
    first = capsys.readouterr().out
    main(args)
    assert capsys.readouterr().out == first


def test_sampling_options_reach_the_decoder_and_a_seed_reproduces(tiny_checkpoint, capsys):
    args = ["sample", "--checkpoint", str(tiny_checkpoint), "--jsonl", "--seed-rng", "5", "--max-chars", "40",
            "--n", "3", "--top-k", "1", "--no-repeat-ngram", "0", "--dry-multiplier", "0", "Hey"]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    # top-k 1 with the penalties off leaves one choice per step: every row is the same text.
    assert len({json.loads(line)["text"] for line in first.splitlines()}) == 1
    main(args)
    assert capsys.readouterr().out == first


def test_best_of_prints_one_quote_per_row_and_is_reproducible(tiny_checkpoint, capsys):
    args = ["sample", "--checkpoint", str(tiny_checkpoint), "--jsonl", "--best-of", "3", "--n", "2",
            "--seed-rng", "9", "--max-chars", "30", "Hey", "I"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert [json.loads(line)["seed"] for line in out.splitlines()] == ["Hey", "Hey", "I", "I"]
    main(args)
    assert capsys.readouterr().out == out


@pytest.mark.parametrize(
    "options, message",
    [
        (["--top-p", "1.5"], "top_p must be a number in (0, 1]"),
        (["--temperature", "nan"], "temperature must be a number from 0 (greedy) to 5, got nan"),
        (["--no-repeat-ngram", "1"], "no_repeat_ngram must be 0 (off) or an integer from 2 to 1000"),
        (["--greedy", "--best-of", "3"], "--best-of needs sampling"),
        (["--best-of", "0"], "best-of n must be an integer from 1 to 64"),
    ],
)
def test_bad_sampling_options_are_one_line_errors(tiny_checkpoint, capsys, options, message):
    assert main(["sample", "--checkpoint", str(tiny_checkpoint), *options, "Hey"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_curly_quote_in_seed_is_replaced_and_emoji_is_refused(tiny_checkpoint, capsys):
    assert main(["sample", "--checkpoint", str(tiny_checkpoint), "--jsonl", "I\u2019m"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == "I'm"
    assert main(["sample", "--checkpoint", str(tiny_checkpoint), "I \U0001f600"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the model has never seen") and "grinning face" in err


def test_info_prints_metadata(tiny_checkpoint, capsys):
    assert main(["info", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "val_bpc: 4.5" in out and "config.hidden_size: 32" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "no/such/file.pt"], "no such checkpoint file"),
        (["sample", "--device", "toaster", "Hey"], "unknown device"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message):
    result = subprocess.run([sys.executable, "-m", "model", *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_file_is_named_in_the_error(tmp_path, capsys):
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"junk")
    assert main(["sample", "--checkpoint", str(bad), "Hey"]) == 2
    assert "junk.pt" in capsys.readouterr().err
