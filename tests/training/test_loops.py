"""training.loops: the loop test a retrain's judge and the quality benchmark share."""

from __future__ import annotations

import pytest

from model.generate import STOP_END, STOP_LENGTH, Completion, Generator
from model.sampling import SamplingConfig
from model.vocab import Vocab
from tests.helpers import looping_model, make_tiny_model
from training.loops import OPENERS, is_loop, loop_rate, make_seeds

# The benchmark's own table of is_loop cases lives in tests/benchmarks/test_quality.py (same function).


def test_a_model_that_cycles_loops_on_every_seed():
    vocab = Vocab(tuple("abcdefgh "))
    generator = Generator(looping_model(vocab), vocab)
    # No loop guard and a cold temperature: the cycle runs to the cap.
    config = SamplingConfig(temperature=0.1, min_p=0.0, no_repeat_ngram=0, dry_multiplier=0.0, loop_repeats=0)
    rate, done = loop_rate(generator, ["a", "b", "c"], 30, config)
    assert rate == 1.0
    assert all(d.stopped == STOP_LENGTH for d in done)


def test_same_rng_seed_same_completions_and_rate(sample_vocab):
    generator = Generator(make_tiny_model(sample_vocab).eval(), sample_vocab)
    seeds = ["Hey,", "The", "I"]
    first = loop_rate(generator, seeds, 40, rng_seed=5)
    again = loop_rate(generator, seeds, 40, rng_seed=5)
    assert first[0] == again[0]
    assert [d.text for d in first[1]] == [d.text for d in again[1]]
    assert 0.0 <= first[0] <= 1.0 and len(first[1]) == 3
    assert first[0] == sum(is_loop(d) for d in first[1]) / 3


def test_a_quote_that_ends_cleanly_is_not_a_loop():
    assert not is_loop(Completion(seed="I", text="I said no.", stopped=STOP_END))


def test_no_seeds_is_an_error(sample_vocab):
    with pytest.raises(ValueError, match="at least one seed"):
        loop_rate(Generator(make_tiny_model(sample_vocab), sample_vocab), [], 40)


def test_seeds_are_openers_the_vocabulary_knows_then_prefixes(sample_quotes, sample_vocab):
    seeds = make_seeds(sample_quotes[:20], 30, sample_vocab)
    openers = [s for s in OPENERS if not sample_vocab.missing(s)]
    assert seeds[: len(openers)] == openers
    assert all(not sample_vocab.missing(s) for s in seeds)
    assert all(any(q.startswith(s) for q in sample_quotes[:20]) for s in seeds[len(openers) :])
