"""benchmarks/quality.py: each metric on hand-made completions, the seeds, the modes, and a tiny full run."""

import pytest

from benchmarks.quality import (
    OPENERS,
    CopyIndex,
    default_cap,
    distinct_2,
    generated_words,
    is_loop,
    main,
    make_seeds,
    measure,
    parse_mode,
)
from model.checkpoint import save_checkpoint
from model.generate import STOP_END, STOP_LENGTH, STOP_LOOP, Completion
from tests.helpers import SAMPLE_CORPUS


def done(seed, text, stopped=STOP_END, logprobs=None):
    return Completion(seed=seed, text=text, stopped=stopped, logprobs=logprobs or [-1.0])


@pytest.mark.parametrize(
    "completion, looped",
    [
        (done("Are we", "Are we back to back to back to"), True),  # "back to " three times
        (done("Ha", "Ha ha ha ha!"), False),  # a 3-character unit is not a loop
        (done("I", "I said no.", STOP_LENGTH), True),  # hit the cap without end-of-quote
        (done("I", "I said no.", STOP_LOOP), True),  # stopped (and trimmed) by the loop guard
        (done("I", "I said no, no, and no."), False),
    ],
)
def test_is_loop(completion, looped):
    assert is_loop(completion) is looped


def test_generated_words_count_the_word_the_seed_started():
    assert generated_words(done("Hey, the coff", "Hey, the coffee's hot, 2 cups")) == [
        "coffee's",
        "hot",
        "cups",
    ]


def test_distinct_2_never_joins_two_completions():
    # Bigrams: (a,b) (b,a) (a,b) | (b,a): 2 distinct of 4; no (b, b) across the two lists.
    assert distinct_2([["a", "b", "a", "b"], ["b", "a"]]) == 0.5
    assert distinct_2([["one"], []]) == 0.0


def test_copy_index_finds_shared_runs_of_the_copy_length():
    index = CopyIndex(["The quick brown fox jumps over the lazy dog tonight."], length=40)
    assert index.copies("He said: quick brown fox jumps over the lazy dog tonight!")  # 48 shared
    assert not index.copies("Xhe quick brown fox jumps over the lazy Xog")  # only 39 in a row


def test_measure_on_hand_made_completions():
    rows = [
        done("Hi", "Hi there friend", STOP_END, [-1.0, -2.0, -3.0]),
        done("Hi", "Hi xyzzy", STOP_LENGTH, [-0.5]),
    ]
    row = measure("m", rows, seconds=2.0, copy_index=CopyIndex(["Hi there friend"], 5), vocab_words={"there"})
    assert (row.loop, row.end, row.copy) == (0.5, 0.5, 0.5)
    assert row.logp == pytest.approx(-6.5 / 4)  # pooled over characters, not per quote
    assert row.length == pytest.approx((15 + 8) / 2)
    assert row.words == pytest.approx(1 / 3)  # "there" of there, friend, xyzzy
    assert row.dist2 == 1.0 and row.rep16 == 0.0
    assert row.chars_per_s == pytest.approx((13 + 6) / 2.0)


def test_make_seeds_are_openers_then_short_validation_prefixes(sample_quotes, sample_vocab):
    seeds = make_seeds(sample_quotes[:30], 60, sample_vocab, rng_seed=3)
    assert len(seeds) == 60 and seeds == make_seeds(sample_quotes[:30], 60, sample_vocab, rng_seed=3)
    openers = [s for s in OPENERS if not sample_vocab.missing(s)]
    assert seeds[: len(openers)] == openers
    for seed in seeds[len(openers) :]:
        assert 1 <= len(seed) <= 12 and any(q.startswith(seed) for q in sample_quotes[:30])


def test_parse_mode_changes_the_default_chain():
    label, config = parse_mode("dry2: dry_base=2.0, no-repeat-ngram=15")
    assert label == "dry2" and config.dry_base == 2.0 and config.no_repeat_ngram == 15
    with pytest.raises(ValueError, match="unknown sampling option 'warmth'"):
        parse_mode("x:warmth=3")
    with pytest.raises(ValueError, match="top_p must be"):
        parse_mode("x:top_p=2")


def test_default_cap_is_the_99th_percentile_rounded_up():
    assert default_cap(["x" * n for n in range(1, 101)]) == 100
    assert default_cap(["x" * 120] * 99 + ["x" * 5000]) == 150


def test_a_tiny_run_prints_machine_and_one_row_per_mode(tiny_checkpoint, capsys):
    rows = main(["--checkpoint", str(tiny_checkpoint), "--corpus", str(SAMPLE_CORPUS), "--format", "lines",
                 "--seeds", "6", "--max-chars", "30", "--mode", "hot:temperature=1.5"])  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "torch threads" in out and "torch 2." in out
    expected = ["greedy", "temperature 1.0", "temperature 0.8, top-k 40", "default chain",
                "best-of-4, default chain", "hot"]  # fmt: skip
    assert [r.mode for r in rows] == expected
    for mode in expected:
        assert f"| {mode} |" in out
    assert rows[0].loop == 1.0  # an untrained model never reaches end-of-quote within 30 characters


def test_the_corpus_defaults_to_the_checkpoints_metadata(tmp_path, tiny_model, sample_vocab, capsys):
    meta = {"corpus": "data/sample_quotes.txt", "corpus_format": "lines", "val_fraction": 0.2}
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, sample_vocab, meta)
    main(["--checkpoint", str(path), "--seeds", "3", "--max-chars", "20"])
    assert "sample_quotes.txt (lines)" in capsys.readouterr().out
    bare = save_checkpoint(tmp_path / "bare.pt", tiny_model, sample_vocab, {})
    with pytest.raises(SystemExit, match="names no corpus"):
        main(["--checkpoint", str(bare), "--seeds", "3"])
