"""The loop test: does a completion loop, and how often does a model loop on a set of seeds?

    rate, done = loop_rate(Generator(model, vocab), ["Hey,", "The"], max_chars=200)

A completion loops when it hit the length cap without choosing end-of-quote, was stopped by the loop
guard, or holds a unit of 4+ characters repeated 3 times in a row. The quality benchmark
(``benchmarks/quality.py``) reports this share per decoding mode; a retrain (``training/judge.py``)
refuses a candidate whose share is above its target. One definition (and one choice of seeds: generic
openers, then short prefixes of held-out quotes), so both mean the same thing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from model.generate import STOP_LENGTH, STOP_LOOP, Completion, Generator
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import Vocab

OPENERS = ("Hey,", "Are we back", "I", "The", "What", "And", "But", "You", "We", "O", "My lord,", "Well,")
LOOP = re.compile(r"(.{4,}?)\1\1", re.DOTALL)


def is_loop(done: Completion) -> bool:
    """Hit the cap without end-of-quote, stopped by the loop guard, or holds a 4+ unit repeated 3 times."""
    return done.stopped in (STOP_LENGTH, STOP_LOOP) or LOOP.search(done.text) is not None


def make_seeds(val_quotes: Sequence[str], count: int, vocab: Vocab, rng_seed: int = 0) -> list[str]:
    """Generic openers, then prefixes of 1-12 characters of validation quotes; all in the vocabulary.

    When no validation quote fits the vocabulary (a server's text full of characters the model never
    saw), the openers repeat: the loop test still runs, with other random streams per row.
    """
    openers = [s for s in OPENERS if not vocab.missing(s)] or [""]
    seeds = openers[:count]
    usable = [q for q in val_quotes if q and not vocab.missing(q[:12])]
    rng = random.Random(rng_seed)
    while len(seeds) < count:
        if not usable:  # no held-out quote fits the vocabulary: the openers again, never an error
            seeds.append(openers[len(seeds) % len(openers)])
            continue
        quote = rng.choice(usable)
        seeds.append(quote[: rng.randint(1, min(12, len(quote)))])
    return seeds


def loop_rate(
    generator: Generator,
    seeds: Sequence[str],
    max_chars: int,
    config: SamplingConfig | None = None,
    rng_seed: int = 0,
) -> tuple[float, list[Completion]]:
    """The share of ``seeds`` whose completion loops, sampled with ``config`` (default: the bot's chain).

    Each row draws from its own stream derived from ``rng_seed``, so two models compared with the same
    ``rng_seed`` see the same seeds under the same randomness.
    """
    if not seeds:
        raise ValueError("the loop test needs at least one seed")
    # An int seed gives row r the stream derive_seed(rng_seed, r), whatever else is in the batch.
    decoder = SamplingDecoder(generator.vocab, config or SamplingConfig(), rng_seed)
    done = generator.complete(list(seeds), max_chars, decoder)
    return sum(is_loop(d) for d in done) / len(done), done
