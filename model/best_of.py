"""Best of N: complete a seed N times as rows of one batch and keep the candidate with the best score.

    [pick] = complete_best_of(Generator(model, vocab), ["Hey,"], n=4, config=SamplingConfig(), rng_seed=42)
    pick.best.text, pick.scores

The score (``score_completion``) is how likely the text is, minus a charge for repeated text and one for
not reaching end-of-quote. For a model with a word model of its character's quotes (``model.phrasing``)
"likely" is per word under that model: of a seed's candidates it keeps the one whose words follow each
other most as the character's do, which a blind reader preferred (README, Voice). Otherwise it is the
model's own mean log-probability per character, which prefers short, common phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.generate import STOP_END, Completion, Generator
from model.phrasing import Phrasing
from model.sampling import SamplingConfig, SamplingDecoder, derive_seed

REPEAT_WEIGHT = 2.0  # nats per character charged for a fully repeated text (seq-rep-16 = 1)
MISSING_END_PENALTY = 1.0  # nats per character charged when a candidate did not reach end-of-quote


def repeated_ngram_share(text: str, n: int = 16) -> float:
    """seq-rep-n: 1 - unique/total character n-grams of ``text`` (0 when it has none)."""
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def score_completion(done: Completion, phrasing: Phrasing | None = None) -> float:
    """Best-of score: how likely the text is, minus repeats, minus a missing end-of-quote.

    ``likely - REPEAT_WEIGHT * seq-rep-16(generated) - MISSING_END_PENALTY * (not ended)``, where
    ``likely`` is the mean log-probability per word under ``phrasing`` (the model's word model of the
    character's quotes) when the model has one, else the model's own mean log-probability per character.
    A candidate that generated nothing scores ``-inf``.
    """
    if not done.logprobs:
        return float("-inf")
    mean = phrasing.score(done.text) if phrasing is not None else sum(done.logprobs) / len(done.logprobs)
    missing_end = 0.0 if done.stopped == STOP_END else MISSING_END_PENALTY
    return mean - REPEAT_WEIGHT * repeated_ngram_share(done.generated) - missing_end


@dataclass
class BestOf:
    """The chosen completion of one seed, with every candidate and its score."""

    best: Completion
    candidates: list[Completion]
    scores: list[float]


def complete_best_of(
    generator: Generator,
    seeds: Sequence[str],
    n: int,
    config: SamplingConfig | None = None,
    rng_seed: int | None = None,
    max_chars: int = 300,
) -> list[BestOf]:
    """Complete each seed ``n`` times as rows of one batch and keep the best by ``score_completion``.

    With ``rng_seed``, candidate k of seed i is drawn from ``derive_seed(rng_seed, i * n + k)``, so the
    same call gives the same quotes every time. Ties go to the earlier candidate.
    """
    if not 1 <= n <= 64:
        raise ValueError(f"best-of n must be an integer from 1 to 64, got {n!r}")
    rows = [seed for seed in seeds for _ in range(n)]
    row_seeds = None if rng_seed is None else [derive_seed(rng_seed, r) for r in range(len(rows))]
    decoder = SamplingDecoder(generator.vocab, config or SamplingConfig(), row_seeds)
    done = generator.complete(rows, max_chars=max_chars, decoder=decoder)
    phrasing = generator.vocab.voice.phrasing if generator.vocab.voice is not None else None
    results = []
    for i in range(len(seeds)):
        group = done[i * n : (i + 1) * n]
        scores = [score_completion(c, phrasing) for c in group]
        best = max(range(n), key=lambda k: (scores[k], -k))
        results.append(BestOf(best=group[best], candidates=group, scores=scores))
    return results
