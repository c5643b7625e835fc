"""The automatic columns of ``benchmarks/voice.py``: spelling, copying, lengths, loops, variety.

    words = KnownWords(train_quotes)           # the corpus's words plus wordfreq's English list
    row = measure("ours", quotes, seeds, train_quotes, val_quotes, words)

A word is a run of letters that may hold apostrophes between letters, lower-cased (``model.voice.words_of``):
the same words the lexicon-aware decoder sees, so "to'track" and "I're" count as misspelled. A known word
with the possessive ``'s`` is known. The seed's own words are not counted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.calibrate import ks_distance
from model.voice import words_of

COPY_LENGTH = 30
LOOP = re.compile(r"(.{4,}?)\1\1", re.DOTALL)  # as training/loops.py: a 4+ unit three times in a row


class KnownWords:
    """The words a reader would not call misspelled: the training corpus's and a general English list."""

    def __init__(self, train_quotes: Sequence[str], general: Sequence[str] | None = None):
        if general is None:
            from wordfreq import get_frequency_dict  # a dev/benchmark dependency

            general = list(get_frequency_dict("en", wordlist="best"))
        self.words = {w for q in train_quotes for w in words_of(q)}
        self.words.update(w for word in general for w in words_of(word))

    def __contains__(self, word: object) -> bool:
        if isinstance(word, str) and word.endswith("'s") and word[:-2] in self.words:
            return True
        return word in self.words


class CopyIndex:
    """Answers whether a text shares a substring of ``length``+ characters with any training quote."""

    def __init__(self, quotes: Sequence[str], length: int = COPY_LENGTH):
        self.length = length
        self.windows = {q[i : i + length] for q in quotes for i in range(len(q) - length + 1)}

    def copies(self, text: str) -> bool:
        n = self.length
        return any(text[i : i + n] in self.windows for i in range(len(text) - n + 1))


def generated_words(seed: str, text: str) -> list[str]:
    """The words of ``text`` after the seed's own words."""
    words = words_of(text)
    skip = len(words_of(seed)) if text.startswith(seed) else 0
    return words[skip:]


def distinct_2(word_lists: Sequence[Sequence[str]]) -> float:
    """Unique/total word bigrams over all lists (never across two lists); 0 when there are none."""
    bigrams = [pair for words in word_lists for pair in itertools.pairwise(words)]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


@dataclass
class Row:
    generator: str
    quotes: int
    misspelled: float
    copy: float
    median_ratio: float
    p10_ratio: float
    p90_ratio: float
    ks: float
    ks_train: float
    loop: float
    dist2: float
    median_chars: float


def measure(
    generator: str,
    quotes: Sequence[str],
    seeds: Sequence[str],
    copy_index: CopyIndex,
    val_quotes: Sequence[str],
    known: KnownWords,
    looped: Sequence[bool] | None = None,
    train_lengths: Sequence[int] | None = None,
) -> Row:
    """One table row; ``looped``: the generator's own loop verdicts (hit the cap...), or'ed with ``LOOP``."""
    words = [generated_words(s, q) for s, q in zip(seeds, quotes, strict=True)]
    flat = [w for ws in words for w in ws]
    lengths = [len(q) for q in quotes]
    val = [len(q) for q in val_quotes]
    p10, p50, p90 = np.percentile(lengths, [10, 50, 90])
    v10, v50, v90 = np.percentile(val, [10, 50, 90])
    flags = looped or [False] * len(quotes)
    return Row(
        generator=generator,
        quotes=len(quotes),
        misspelled=sum(w not in known for w in flat) / len(flat) if flat else 0.0,
        copy=sum(copy_index.copies(q) for q in quotes) / len(quotes),
        median_ratio=float(p50 / v50),
        p10_ratio=float(p10 / v10),
        p90_ratio=float(p90 / v90),
        ks=ks_distance(lengths, val),
        ks_train=ks_distance(lengths, train_lengths) if train_lengths else float("nan"),
        loop=sum(f or LOOP.search(q) is not None for f, q in zip(flags, quotes, strict=True)) / len(quotes),
        dist2=distinct_2(words),
        median_chars=float(p50),
    )


def misspelled_words(quotes: Sequence[str], seeds: Sequence[str], known: KnownWords) -> list[str]:
    """The generated words outside ``known``, each once, in order: what the misspelled column counts."""
    flat = [w for s, q in zip(seeds, quotes, strict=True) for w in generated_words(s, q)]
    return list(dict.fromkeys(w for w in flat if w not in known))


def format_table(rows: Sequence[Row], val_median: float) -> str:
    head = (
        f"| generator | quotes | misspelled | copy 30+ | median chars (val {val_median:.0f}) | median ratio "
        "| p10 ratio | p90 ratio | KS | KS vs train | loop | distinct-2 |"
    )
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(
            f"| {r.generator} | {r.quotes} | {r.misspelled:.1%} | {r.copy:.1%} | {r.median_chars:.0f} "
            f"| {r.median_ratio:.2f} | {r.p10_ratio:.2f} | {r.p90_ratio:.2f} | {r.ks:.2f} | {r.ks_train:.2f} "
            f"| {r.loop:.1%} | {r.dist2:.3f} |"
        )
    return "\n".join(lines)
