"""benchmarks/voice.py and voice_metrics.py: each column on hand-made quotes, the blind pairs, --score."""

import json

import pytest

from benchmarks.voice import main, markov_quotes, score, voice_seeds, write_pairs
from benchmarks.voice_metrics import CopyIndex, KnownWords, distinct_2, ks_distance, measure, misspelled_words
from model.checkpoint import save_checkpoint
from tests.conftest import SAMPLE_CORPUS

TRAIN = ["Hey, the coffee machine and I have reached an understanding.", "Are we back to the meeting now?"]


def test_known_words_take_the_corpus_and_the_general_list():
    known = KnownWords(TRAIN, general=["zebra", "don't"])
    assert "coffee" in known and "zebra" in known and "don't" in known
    assert "expleater" not in known and "don" not in known and "to't" not in known
    assert "zebra's" in known and "expleater's" not in known  # a known word's possessive


def test_measure_columns_on_hand_made_quotes():
    known = KnownWords(TRAIN, general=["a", "cat"])
    copy = CopyIndex(TRAIN)
    val = ["x" * 10, "x" * 20, "x" * 30]
    quotes = [
        "Hey, the coffee machine and I have reached",
        "Hey, a scorit cat",
        "Hey, a cat a cat a cat a cat",
    ]
    row = measure("t", quotes, ["Hey,"] * 3, copy, val, known)
    # words after the seed: 7 + 3 + 8, one of them ("scorit") unknown
    assert row.misspelled == pytest.approx(1 / 18)
    assert row.copy == pytest.approx(1 / 3)  # the first shares 30+ characters with a training quote
    assert row.loop == pytest.approx(1 / 3)  # "a cat " three times in a row
    assert row.median_ratio == pytest.approx(28 / 20)
    assert misspelled_words(quotes, ["Hey,"] * 3, known) == ["scorit"]


def test_ks_and_distinct_2():
    assert ks_distance([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_distance([1, 2], [10, 20]) == 1.0
    assert distinct_2([["a", "b", "a", "b"]]) == pytest.approx(2 / 3)


def test_voice_seeds_are_first_words_of_validation_quotes():
    assert voice_seeds(["Hey, you", "So it goes", "Hey, me"], 2) == ["Hey,", "So"]


def test_markov_quotes_start_with_the_seed_or_are_none(sample_quotes):
    out = markov_quotes(sample_quotes, ["I", "Zzyzx"], 2, 0)
    assert len(out) == 4 and out[2] is None and out[3] is None
    assert all(q is None or q.startswith("I") for q in out[:2])


def test_markov_no_copy_keeps_only_quotes_that_copy_nothing(sample_quotes):
    copy = CopyIndex(sample_quotes)
    plain = markov_quotes(sample_quotes, ["I", "The"], 8, 0)
    assert sum(copy.copies(q) for q in plain if q) >= 4  # the chain recites its corpus most of the time
    held = markov_quotes(sample_quotes, ["I", "The"], 8, 0, copy.copies)
    assert any(held) and not any(copy.copies(q) for q in held if q)
    assert all(q is None or q.startswith(("I", "The")) for q in held)


def test_pairs_hide_the_sides_and_score_reads_a_judges_verdicts(tmp_path, capsys):
    n = write_pairs(
        tmp_path, ["Hey,", "So"], ["Hey, ours", "So ours"], ["Hey, markov", None], {"character": "Pat"}, 0
    )
    assert n == 1  # no pair where Markov found nothing
    pairs = json.loads((tmp_path / "pairs.json").read_text())
    assert "ours" not in json.dumps(pairs["pairs"][0]["id"]) and pairs["character"] == "Pat"
    key = json.loads((tmp_path / "key.json").read_text())
    ours_side = "A" if key["p001"]["A"] == "ours" else "B"
    assert pairs["pairs"][0][ours_side] == "Hey, ours"
    verdicts = tmp_path / "verdicts.json"
    verdicts.write_text(
        json.dumps(
            {
                "judge": "t",
                "verdicts": {"p001": {"in_character": ours_side, "fluent": "tie", "misspelled": [ours_side]}},
            }
        )
    )
    result = score(verdicts, tmp_path / "key.json")
    assert result["in_character"] == {"ours": 1, "markov": 0, "tie": 0}
    assert result["misspelled"] == {"ours": 1, "markov": 0}
    assert "in character | 1 (100%)" in capsys.readouterr().out


def test_a_tiny_full_run_writes_pairs(tmp_path, tiny_model, sample_vocab, capsys):
    path = save_checkpoint(
        tmp_path / "tiny.pt", tiny_model, sample_vocab, {"corpus": "data/sample_quotes.txt"}
    )
    rows = main(["--checkpoint", str(path), "--corpus", str(SAMPLE_CORPUS), "--seeds", "4", "--k", "2",
                 "--mode", "off:lexicon=0", "--out", str(tmp_path / "out")])  # fmt: skip
    assert [r.generator for r in rows] == ["ours (default)", "off", "Markov (state 2)"]
    assert rows[0].quotes == 8
    assert (tmp_path / "out" / "pairs.json").is_file() and (tmp_path / "out" / "key.json").is_file()
    assert "| generator |" in capsys.readouterr().out
    main(["--checkpoint", str(path), "--corpus", str(SAMPLE_CORPUS), "--seeds", "4", "--k", "2",
          "--mode", "hot:temperature=3", "--pairs-from", "hot", "--out", str(tmp_path / "off")])  # fmt: skip
    quotes = json.loads((tmp_path / "off" / "quotes.json").read_text())
    key = json.loads((tmp_path / "off" / "key.json").read_text())
    paired = json.loads((tmp_path / "off" / "pairs.json").read_text())["pairs"]
    ours = [p[side] for p in paired for side in "AB" if key[p["id"]][side] == "ours"]
    assert ours and set(ours) <= set(quotes["hot"]) and not set(ours) <= set(quotes["ours (default)"])
    with pytest.raises(SystemExit, match="none of the --mode labels"):
        main(["--checkpoint", str(path), "--pairs-from", "nope", "--mode", "off:lexicon=0"])


def test_pairs_take_every_seeds_first_quote_before_any_seconds(tmp_path):
    ours = ["a1", "a2", "b1", "b2"]  # seed-major, k = 2
    n = write_pairs(tmp_path, ["a", "b"], ours, ["m"] * 4, {}, 0, limit=2)
    pairs = json.loads((tmp_path / "pairs.json").read_text())["pairs"]
    assert n == 2 and [p["seed"] for p in pairs] == ["a", "b"]
    assert {p["A"] for p in pairs} | {p["B"] for p in pairs} == {"a1", "b1", "m"}
