"""`python -m model`: sampling and info from the command line, and one-line errors."""

import json
import subprocess
import sys

import pytest

from model.__main__ import main
from tests.conftest import REPO


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
