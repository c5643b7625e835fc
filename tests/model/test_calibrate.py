"""model/calibrate.py: hazards, bins, and a fit that moves sampled lengths toward the target's."""

import numpy as np

from model.calibrate import fit_length_calibration, hazards, length_edges, opening_seeds
from model.generate import Generator
from model.sampling import SamplingConfig, SamplingDecoder
from model.voice import Voice


def test_hazards_count_endings_per_character_written():
    # lengths 3 and 5 in one bin [0, inf): 2 endings over 3 + 5 + 2 characters (0..3 and 0..5 inclusive)
    rate = hazards([3, 5], [False, False], (0,))
    assert np.isclose(rate[0], 2.5 / (10 + 1))
    censored = hazards([3, 5], [False, True], (0,))
    assert np.isclose(censored[0], 1.5 / 11)


def test_length_edges_start_at_zero_and_increase():
    edges = length_edges(list(range(1, 200)), bins=8)
    assert edges[0] == 0 and list(edges) == sorted(set(edges)) and len(edges) == 8


def test_opening_seeds_are_first_words_or_empty(sample_quotes):
    seeds = opening_seeds(sample_quotes, 40, 1)
    firsts = {q.split(" ")[0] for q in sample_quotes}
    assert all(s == "" or s in firsts for s in seeds) and "" in seeds


def test_the_fitted_calibration_moves_the_sampled_median_toward_the_target(tiny_model, sample_vocab):
    target = [int(x) for x in np.linspace(150, 250, 60)]  # far longer than an untrained model writes
    generator = Generator(tiny_model, sample_vocab)
    seeds = [""] * 48

    def median(vocab):
        done = Generator(tiny_model, vocab).complete(seeds, 400, SamplingDecoder(vocab, SamplingConfig(), 99))
        return float(np.median([len(d.text) for d in done]))

    before = median(sample_vocab)
    calibration = fit_length_calibration(generator, seeds, target, bins=6)
    after = median(sample_vocab.with_voice(Voice(None, calibration)))
    assert abs(after - 200) < abs(before - 200) / 2


def test_closing_lets_the_fit_end_quotes_that_may_only_end_after_a_full_stop(tiny_model, sample_vocab):
    """With the ending rule a quote ends only after ".": the end-of-quote bias alone cannot end a long
    sentence, so a fit without closing leaves a long tail; closing puts the due bias on "." as well."""
    target = [int(x) for x in np.linspace(20, 40, 60)]
    vocab = sample_vocab.with_voice(Voice(quote_ends="."))
    seeds = [""] * 48

    def p90(closing: float) -> float:
        config = SamplingConfig(closing=closing)
        calibration = fit_length_calibration(
            Generator(tiny_model, vocab), seeds, target, bins=4, config=config
        )
        fitted = vocab.with_voice(Voice(None, calibration, quote_ends="."))
        done = Generator(tiny_model, fitted).complete(seeds, 400, SamplingDecoder(fitted, config, 7))
        return float(np.percentile([len(d.text) for d in done], 90))

    without, with_closing = p90(0.0), p90(1.0)
    assert with_closing < 60 < without
