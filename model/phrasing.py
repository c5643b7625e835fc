"""The character's phrasing: a word trigram model of the training quotes, fused into character sampling.

    phrasing = Phrasing.fit(train_quotes, lexicon)  # counts over the lexicon's word ids
    letters, end = phrasing.next_letters((START, phrasing.word_id("i")), "th")  # log q: letters, end

A character model alone strings real words into sentences without sense: it has not read enough of the
character to know what they talk about and how they put it. A word model of the same quotes knows that
(it is what a Markov bot is), but can only recombine the quotes. Sampling uses both (shallow fusion,
``model.fusion``):
each next character's logit gets ``weight * log q``, where q is the word model's probability that the
word in progress goes on with that letter, or ends there, given the two words before it. Between words
it only chooses among letters (whether a word comes next, or punctuation, stays the character model's
call). The word model is interpolated Witten-Bell (trigram -> bigram -> unigram); its unigram level
gives every lexicon word a small share (``PRIOR``), so words the quotes never used stay possible.

Words are the lexicon's (``model.voice``): runs of letters, lower-cased; their ids are their positions in
the sorted lexicon, so the words starting with a prefix are one range of ids, and a context's followers
are summed over that range with one ``searchsorted``. A sentence end (``.``, ``!``, ``?``, a new line)
starts the context afresh, as does the quote's start; it is also counted, as a word (id ``end``, one past
the lexicon's), so that best-of's ``score`` knows after which words the character's sentences end. (Used
in sampling too, as a veto on ending a sentence after such words, it made sentences run on: the
character model already knows how often they end.)
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from model.vocab import SPECIAL_TOKENS
from model.voice import APOSTROPHE, MAX_WORD, Lexicon, letter_runs, words_of

START = -1  # the context id of "no word yet in this sentence"
UNKNOWN = -2  # a context word the lexicon lacks: no trigram or bigram continues it
SENTENCE_ENDS = frozenset(".!?\n")
_SENTENCE_SPLIT = re.compile("[.!?\n]")
SENTENCE_END = "\0"  # the sentence's end as a word of the counts (no word holds this character)
PRIOR = 0.1  # pseudo-count of every lexicon word at the unigram level
_TOP = "\U0010ffff"
_CACHE_LIMIT = 200_000
_BIAS_CACHE_LIMIT = 100_000
_CONTEXT_CHARS = 80  # how far back the two context words are looked for
_CONTEXT_CACHE_LIMIT = 20_000  # contexts by the text they were read from (inside a word, all hits)


def _tokens(text: str, apostrophes: bool) -> Iterable[str | None]:
    """The lexicon's words (``model.voice``; letter runs for a lexicon without contractions), and
    ``None`` at each sentence end."""
    split = words_of if apostrophes else letter_runs
    sentences = _SENTENCE_SPLIT.split(text)
    for i, sentence in enumerate(sentences):
        if i:
            yield None
        yield from split(sentence)


class _Followers:
    """One context's following words: sorted ids and cumulative counts, for range sums."""

    __slots__ = ("cum", "ids", "total", "types")

    def __init__(self, counts: dict[int, int]):
        self.ids = np.array(sorted(counts), dtype=np.int64)
        self.cum = np.concatenate([[0.0], np.cumsum([counts[i] for i in self.ids], dtype=np.float64)])
        self.total = float(self.cum[-1])
        self.types = float(len(self.ids))

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Counts of the followers with ids in each ``[lo, hi)``."""
        return self.cum[np.searchsorted(self.ids, hi)] - self.cum[np.searchsorted(self.ids, lo)]


class Phrasing:
    """Interpolated word trigram counts over a lexicon, answering per-letter probabilities."""

    def __init__(
        self,
        lexicon: Lexicon,
        unigram: np.ndarray,
        bigram: np.ndarray,
        trigram: np.ndarray,
    ):
        self.lexicon = lexicon
        self.unigram = np.asarray(unigram, dtype=np.int64)
        self.bigram = np.asarray(bigram, dtype=np.int64).reshape(-1, 3)
        self.trigram = np.asarray(trigram, dtype=np.int64).reshape(-1, 4)
        self.end = len(lexicon)  # the id of "the sentence ends here", one past the last word
        if len(self.unigram) != len(lexicon) + 1:
            raise ValueError(
                "a phrasing's unigram counts need one entry per lexicon word and one for the end"
            )
        p1 = self.unigram + PRIOR
        self._cum1 = np.concatenate([[0.0], np.cumsum(p1 / p1.sum())])
        self._level2 = self._group(self.bigram[:, :1], self.bigram[:, 1], self.bigram[:, 2])
        self._level3 = self._group(self.trigram[:, :2], self.trigram[:, 2], self.trigram[:, 3])
        self._ranges: dict[str, tuple[str, np.ndarray, np.ndarray] | None] = {}
        self._biases: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor] | None] = {}
        self._biases_for: np.ndarray | None = None  # the vocabulary table the biases were built for
        self._letters = torch.zeros(0, dtype=torch.bool)
        self._slots: dict[str, np.ndarray] = {}
        self._contexts: dict[tuple[int, ...], tuple[int, int]] = {}

    @staticmethod
    def _group(contexts: np.ndarray, words: np.ndarray, counts: np.ndarray) -> dict[tuple, _Followers]:
        grouped: dict[tuple, dict[int, int]] = {}
        for context, word, count in zip(
            map(tuple, contexts.tolist()), words.tolist(), counts.tolist(), strict=True
        ):
            grouped.setdefault(context, {})[word] = count
        return {context: _Followers(followers) for context, followers in grouped.items()}

    @classmethod
    def fit(cls, quotes: Iterable[str], lexicon: Lexicon, min_count: int = 1) -> Phrasing:
        """Count the quotes' words in context; n-grams seen fewer than ``min_count`` times are dropped."""
        index = {word: i for i, word in enumerate(lexicon.words)}
        uni: Counter[int] = Counter()
        bi: Counter[tuple[int, int]] = Counter()
        tri: Counter[tuple[int, int, int]] = Counter()
        index[SENTENCE_END] = len(lexicon.words)
        for quote in quotes:
            u = v = START
            for token in (*_tokens(quote, lexicon.apostrophes), None):  # a quote's end ends its sentence too
                if token is None and v == START:
                    continue  # no words since the last end ("?!"): nothing ended
                w = index.get(token or SENTENCE_END, UNKNOWN)
                if w != UNKNOWN:
                    uni[w] += 1
                    bi[v, w] += 1
                    tri[u, v, w] += 1
                u, v = (START, START) if token is None else (v, w)
        unigram = np.zeros(len(lexicon) + 1, dtype=np.int64)
        for word, count in uni.items():
            unigram[word] = count
        bigram = [(*key, n) for key, n in sorted(bi.items()) if n >= min_count and key[0] != UNKNOWN]
        trigram = [(*key, n) for key, n in sorted(tri.items()) if n >= min_count and UNKNOWN not in key[:2]]
        return cls(lexicon, unigram, np.array(bigram).reshape(-1, 3), np.array(trigram).reshape(-1, 4))

    def to_metadata(self) -> dict:
        """Tensors for the checkpoint (``torch.load(weights_only=True)`` reads them)."""
        return {
            "unigram": torch.from_numpy(self.unigram.astype(np.int32)),
            "bigram": torch.from_numpy(self.bigram.astype(np.int32)),
            "trigram": torch.from_numpy(self.trigram.astype(np.int32)),
        }

    @classmethod
    def from_metadata(cls, stored: dict, lexicon: Lexicon) -> Phrasing:
        """The phrasing saved by ``to_metadata`` over ``lexicon``."""
        return cls(
            lexicon,
            np.asarray(stored["unigram"]),
            np.asarray(stored["bigram"]),
            np.asarray(stored["trigram"]),
        )

    def word_id(self, word: str | None) -> int:
        """The context id of ``word`` (``None``: the sentence's start)."""
        if word is None:
            return START
        words = self.lexicon.words
        i = bisect_left(words, word)
        return i if i < len(words) and words[i] == word else UNKNOWN

    def _mass(self, u: int, v: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """P(next word's id in [lo, hi) | u, v), interpolated Witten-Bell."""
        mass = self._cum1[hi] - self._cum1[lo]
        for level, key in ((self._level2, (v,)), (self._level3, (u, v))):
            followers = level.get(key)
            if followers is not None:
                mass = (followers.mass(lo, hi) + followers.types * mass) / (followers.total + followers.types)
        return mass

    def known(self, context: tuple[int, int]) -> tuple[int, int]:
        """``context`` with the words the counts never saw it continue replaced by ``UNKNOWN``: the same
        probabilities, and one cache entry for every context that backs off alike."""
        u, v = context
        if (u, v) not in self._level3:
            u = UNKNOWN
            if (v,) not in self._level2:
                v = UNKNOWN
        return u, v

    def _ranges_of(self, prefix: str) -> tuple[str, np.ndarray, np.ndarray] | None:
        """(the letters that may follow ``prefix``, then each one's word-id range and, last, the range of
        the word ``prefix`` itself, empty if it is none); ``None``: no word starts so."""
        if prefix in self._ranges:
            return self._ranges[prefix]
        found = self.lexicon.follow(prefix) if len(prefix) <= MAX_WORD else None
        result = None
        if found is not None:
            letters, whole = found
            words = self.lexicon.words
            starts = [bisect_left(words, prefix + letter) for letter in letters]
            ends = [
                bisect_left(words, prefix + letter + _TOP, lo)
                for letter, lo in zip(letters, starts, strict=True)
            ]
            lo = np.array([*starts, bisect_left(words, prefix)], dtype=np.int64)
            hi = np.array([*ends, lo[-1] + (1 if whole else 0)], dtype=np.int64)
            result = (letters, lo, hi)
        if len(self._ranges) >= _CACHE_LIMIT:
            self._ranges.clear()
        self._ranges[prefix] = result
        return result

    def _logs(self, context: tuple[int, int], prefix: str) -> tuple[str, np.ndarray] | None:
        """(the letters that may follow ``prefix``, log q of each and last of ending the word here)."""
        ranges = self._ranges_of(prefix)
        if ranges is None:
            return None
        letters, lo, hi = ranges
        mass = self._mass(*self.known(context), lo, hi)
        total = mass.sum()
        if total <= 0:
            return None
        with np.errstate(divide="ignore"):
            return letters, np.log(mass / total)

    def next_letters(self, context: tuple[int, int], prefix: str) -> tuple[dict[str, float], float] | None:
        """(log q of each letter that may follow ``prefix``, log q of ending the word here), or ``None``.

        ``prefix`` is lower-case; q is conditioned on the next word starting with ``prefix``.
        """
        found = self._logs(context, prefix)
        if found is None:
            return None
        letters, logs = found
        return {letter: float(x) for letter, x in zip(letters, logs[:-1], strict=True)}, float(logs[-1])

    def score(self, text: str) -> float:
        """Mean log-probability per word (and sentence end) of ``text`` under this word model (0: no words).

        Best-of (``model.best_of``) keeps the candidate that scores highest: the one whose words follow
        each other most as in the character's quotes. A word outside the lexicon costs ``ln 1e-7``.
        """
        u = v = START
        total, words = 0.0, 0
        # each sentence's end counts as a word, as in ``fit``
        for token in (*_tokens(text, self.lexicon.apostrophes), None):
            if token is None and v == START:
                continue
            w = self.end if token is None else self.word_id(token)
            mass = self._mass(u, v, np.array([w]), np.array([w + 1]))[0] if w >= 0 else 0.0
            total += math.log(max(mass, 1e-7))
            words += 1
            u, v = (START, START) if token is None else (v, w)
        return total / words if words else 0.0

    def bias(
        self,
        context: tuple[int, int],
        prefix: str,
        tables: tuple[np.ndarray, dict[str, list[int]]],
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(log q per vocabulary id, which ids are letters) for ``next_letters``; ``None``: no say.

        ``tables``: the ids that end a word and each lower-case letter's ids (``Voice.vocab_tables``).
        Ids other than letters and (in a word) word ends get 0; letters no word goes on with, -inf.
        """
        enders, ids_of = tables
        if self._biases_for is not enders:  # a new vocabulary: its letters, and fresh caches
            letters = np.zeros(len(enders), dtype=bool)
            letters[[i for letter, ids in ids_of.items() if letter != APOSTROPHE for i in ids]] = True
            self._letters = torch.from_numpy(letters)
            self._biases, self._slots, self._biases_for = {}, {}, enders
        context = self.known(context)
        key = (*context, prefix)
        if key in self._biases:
            return self._biases[key]
        found = self._logs(context, prefix)
        result = None
        if found is not None:
            logs = np.concatenate([found[1], [-np.inf, 0.0]]).astype(np.float32)
            # Copied into torch's memory: numpy-backed, the process grew ~3 MB a quote (test_sampling_memory).
            result = (torch.tensor(logs[self._slots_of(prefix, found[0], tables)]), self._letters)
        if len(self._biases) >= _BIAS_CACHE_LIMIT:  # 30 MB at most for a 70-character vocabulary
            self._biases.clear()
        self._biases[key] = result
        return result

    def _slots_of(
        self, prefix: str, letters: str, tables: tuple[np.ndarray, dict[str, list[int]]]
    ) -> np.ndarray:
        """Per vocabulary id, its place in ``[*letters' log q, end's log q, -inf, 0]`` (cached per prefix)."""
        slots = self._slots.get(prefix)
        if slots is None:
            enders, ids_of = tables
            n = len(letters)
            slots = np.full(len(enders), n + 2, dtype=np.int64)  # not a letter: 0
            if prefix:
                slots[enders] = n  # ending the word here
            place = {letter: j for j, letter in enumerate(letters)}
            for letter, ids in ids_of.items():
                if letter == APOSTROPHE:  # in a word that goes on with it (don't); else a word end or 0
                    if APOSTROPHE in place:
                        slots[ids] = place[APOSTROPHE]
                    continue
                slots[ids] = place.get(letter, n + 1)  # a letter no word goes on with: -inf
            if len(self._slots) >= _CACHE_LIMIT:
                self._slots.clear()
            self._slots[prefix] = slots
        return slots

    def context_of(self, history: Sequence[int], chars: Sequence[str], prefix_len: int) -> tuple[int, int]:
        """The ids of the two words before the word in progress (``START`` past a sentence's start)."""
        stop = max(-1, len(history) - prefix_len - _CONTEXT_CHARS - 1)
        key = tuple(history[stop + 1 : len(history) - prefix_len])  # all the walk below reads
        found = self._contexts.get(key)
        if found is None:
            found = self._walk_back(history, chars, prefix_len, stop)
            if len(self._contexts) >= _CONTEXT_CACHE_LIMIT:
                self._contexts.clear()
            self._contexts[key] = found
        return found

    def _walk_back(
        self, history: Sequence[int], chars: Sequence[str], prefix_len: int, stop: int
    ) -> tuple[int, int]:
        offset = len(SPECIAL_TOKENS)
        apostrophes = self.lexicon.apostrophes
        ids: list[int] = []
        letters: list[str] = []
        for position in range(len(history) - prefix_len - 1, stop, -1):  # walk back from the word
            token = history[position]
            char = chars[token - offset] if token >= offset else "\n"  # the quote's start ends a sentence
            if char.isalpha() or (apostrophes and char == APOSTROPHE and letters[-1:] != [char]):
                letters.append(char.lower())
                continue
            word = "".join(reversed(letters)).strip(APOSTROPHE)
            letters = []
            if word:
                ids.append(self.word_id(word))
                if len(ids) == 2:
                    break
            if char in SENTENCE_ENDS:
                break
        else:
            word = "".join(reversed(letters)).strip(APOSTROPHE)
            if word and len(ids) < 2:
                ids.append(self.word_id(word))
        ids += [START] * (2 - len(ids))
        return ids[1], ids[0]
