"""Fitting the end-of-quote calibration: sampled quote lengths should follow the corpus's.

    calibration = fit_length_calibration(generator, seeds, [len(q) for q in train_quotes])
    vocab = vocab.with_voice(Voice(lexicon, calibration))

Teacher-forced end-of-quote probabilities are well calibrated, yet free-running sampling ends quotes
early (its own text is not the corpus's). So the correction is fitted on sampled quotes, by hazard
matching: per bin of quote length, the chance of ending at each character given the quote got that far
is measured on the target lengths and on quotes sampled with the default ``SamplingConfig`` (lexicon,
current calibration and all); the bin's end-of-quote bias moves by the log of their ratio. A few rounds
settle it, because moving one bin changes which quotes reach the next. Every round's sample is also
scored by its Kolmogorov-Smirnov distance to the target lengths, and the best round's biases are kept
(round 0 has none), so fitting never leaves a model further from the target than it found it. Small
corpora get fewer bins (one per ``QUOTES_PER_BIN`` target quotes): their hazards are noisy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from model.generate import STOP_LENGTH, Generator
from model.sampling import SamplingConfig, SamplingDecoder
from model.voice import LengthCalibration, Voice

MAX_STEP = 3.0  # most a bin's bias moves in one round (nats)
MAX_BIAS = 10.0
QUOTES_PER_BIN = 40


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the two empirical CDFs."""
    xs, ys = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    grid = np.concatenate([xs, ys])
    fa = np.searchsorted(xs, grid, side="right") / len(xs)
    fb = np.searchsorted(ys, grid, side="right") / len(ys)
    return float(np.max(np.abs(fa - fb)))


def length_edges(lengths: Sequence[int], bins: int = 12) -> tuple[int, ...]:
    """Bin starts at quantiles of ``lengths`` (so each bin holds about as many endings), from 0."""
    qs = np.quantile(np.asarray(lengths, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
    return tuple(sorted({0, *(int(q) for q in qs if q >= 1)}))


def hazards(lengths: Sequence[int], censored: Sequence[bool], edges: Sequence[int]) -> np.ndarray:
    """Per bin: (endings + 0.5) / (characters written in the bin + 1), a smoothed per-character rate."""
    events = np.zeros(len(edges))
    exposure = np.zeros(len(edges))
    bounds = [*edges, math.inf]
    for length, cut in zip(lengths, censored, strict=True):
        for i in range(len(edges)):
            lo, hi = bounds[i], bounds[i + 1]
            if length < lo:
                break
            exposure[i] += min(length, hi - 1) - lo + 1
            if not cut and length < hi:
                events[i] += 1
    return (events + 0.5) / (exposure + 1.0)


def fit_length_calibration(
    generator: Generator,
    seeds: Sequence[str],
    target_lengths: Sequence[int],
    *,
    rounds: int = 8,
    bins: int | None = None,
    max_chars: int | None = None,
    config: SamplingConfig | None = None,
    rng_seed: int = 0,
) -> LengthCalibration:
    """Fit end-of-quote biases so quotes sampled from ``seeds`` get ``target_lengths``' length distribution.

    ``generator.vocab.voice`` (its lexicon) is used while sampling; its old calibration is replaced.
    """
    if not seeds or len(target_lengths) < 2:
        raise ValueError("fitting a length calibration needs seeds and at least 2 target lengths")
    bins = bins or min(12, max(3, len(target_lengths) // QUOTES_PER_BIN))
    edges = length_edges(target_lengths, bins)
    cap = max_chars or int(max(target_lengths) * 1.5) + 10
    target = hazards(target_lengths, [False] * len(target_lengths), edges)
    base = generator.vocab.voice or Voice()
    bias = np.zeros(len(edges))
    best: tuple[float, np.ndarray] = (math.inf, bias)
    for round_ in range(rounds):
        calibration = LengthCalibration(edges, tuple(float(b) for b in bias))
        vocab = generator.vocab.with_voice(
            Voice(base.lexicon, calibration, base.info, base.phrasing, base.copy_guard, base.quote_ends)
        )
        decoder = SamplingDecoder(vocab, config or SamplingConfig(), rng_seed + round_)
        done = Generator(generator.model, vocab).complete(list(seeds), cap, decoder)
        lengths = [len(d.text) for d in done]
        best = min(best, (ks_distance(lengths, target_lengths), bias), key=lambda pair: pair[0])
        sampled = hazards(lengths, [d.stopped == STOP_LENGTH for d in done], edges)
        step = np.clip(np.log(target / sampled), -MAX_STEP, MAX_STEP)
        bias = np.clip(bias + step, -MAX_BIAS, MAX_BIAS)
    return LengthCalibration(edges, tuple(round(float(b), 4) for b in best[1]))


def opening_seeds(quotes: Sequence[str], count: int, rng_seed: int = 0) -> list[str]:
    """Seeds as users type them: the first word of random quotes, and some empty ones (a whole quote)."""
    rng = random.Random(rng_seed)
    seeds = []
    for _ in range(count):
        quote = rng.choice(quotes)
        seeds.append("" if rng.random() < 0.25 else quote.split(" ")[0])
    return seeds
