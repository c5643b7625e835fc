"""Capitals: mid-sentence, a word starts with a capital only if the character's quotes capitalize it there.

    capitals = Capitals.fit(train_quotes)   # "pat", "monday", "i'm": capitalized mid-sentence
    mask = capitals.mask(history, chars, prefix, voice.vocab_tables(chars))   # None: no say

A character model trained on verse (the bundled model read tiny Shakespeare, whose lines start with a
capital) carries its capitals into a modern character's prose: "I did buy It a success", "a lot about My
priorities". The words a character's quotes capitalize mid-sentence (names, days, "I") are known from the
quotes, so a capital after a comma or inside a clause is allowed only where such a word can follow, and the
word must then stay one of them. At a sentence's start (the quote's start, after ``.``, ``!``, ``?``, a new
line, or an opening quote mark) any capital is allowed. A word of the user's seed is left alone. The other
way round, a word the quotes never write in small letters ("I", "Pat": ``proper``) is not written so
(``Voice.word_mask(small=True)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from model.vocab import SPECIAL_TOKENS
from model.voice import WORD_RE, Lexicon, words_of

SENTENCE_STARTS = frozenset('.!?\n"(')  # the last mark before a word that starts a sentence (or a quotation)
_LOOK_BACK = 8  # characters read before a word for its sentence's start
_CACHE_LIMIT = 50_000


def starts_sentence(before: str) -> bool:
    """Whether a word after the text ``before`` starts a sentence (spaces and an opening ``'`` skipped)."""
    rest = before.rstrip(" '")
    return not rest or rest[-1] in SENTENCE_STARTS


def mid_sentence_capitals(quotes: Iterable[str]) -> list[str]:
    """The words (lower-cased, as ``words_of``) that ``quotes`` capitalize where no sentence starts."""
    found: set[str] = set()
    for quote in quotes:
        for match in WORD_RE.finditer(quote):
            if match.group(0)[0].isupper() and not starts_sentence(quote[: match.start()]):
                found.update(words_of(match.group(0)))
    return sorted(found)


class Capitals:
    """The words a character capitalizes mid-sentence, answering which ids may come next."""

    def __init__(self, words: Iterable[str], proper: Iterable[str] = ()):
        self.lexicon = Lexicon(words)
        self.proper = frozenset(proper)  # of those, the words the quotes never write in small letters
        self._masks: dict[tuple[str, int], np.ndarray | None] = {}

    @classmethod
    def fit(cls, quotes: Sequence[str]) -> Capitals:
        """The capitals of ``quotes``, and which of them are never written in small letters."""
        words = mid_sentence_capitals(quotes)
        small = {
            w
            for q in quotes
            for m in WORD_RE.finditer(q)
            if m.group(0).islower()
            for w in words_of(m.group(0))
        }
        return cls(words, [w for w in words if w not in small])

    def to_metadata(self) -> dict:
        """Plain text for the checkpoint: the words, and the proper ones, space-separated."""
        return {"words": " ".join(self.lexicon.words), "proper": " ".join(sorted(self.proper))}

    @classmethod
    def from_metadata(cls, stored: dict) -> Capitals:
        """The capitals saved by ``to_metadata``."""
        return cls(stored["words"].split(), stored.get("proper", "").split())

    def mask(
        self,
        history: Sequence[int],
        chars: Sequence[str],
        prefix: str,
        tables: tuple[np.ndarray, dict[str, list[int]]],
    ) -> np.ndarray | None:
        """Allowed next ids [vocab] (bool) for a row whose word in progress is ``prefix``; ``None``: any.

        ``tables``: the ids that end a word and each lower-case letter's ids (``Voice.vocab_tables``).
        Between words mid-sentence: no capital that starts none of the words; in a word that started
        with a capital mid-sentence: only the ways on to one of them.
        """
        offset = len(SPECIAL_TOKENS)
        start = len(history) - len(prefix)
        if start <= 0:
            return None
        if prefix and not (history[start] >= offset and chars[history[start] - offset].isupper()):
            return None  # a word begun in small letters: the lexicon's (``Voice.word_mask(small=True)``)
        window = history[max(0, start - _LOOK_BACK) : start]
        if starts_sentence("".join(chars[t - offset] if t >= offset else "\n" for t in window)):
            return None
        key = (prefix, len(tables[0]))
        if key not in self._masks:
            if len(self._masks) >= _CACHE_LIMIT:
                self._masks.clear()
            self._masks[key] = self._build(prefix, chars, tables)
        return self._masks[key]

    def _build(
        self, prefix: str, chars: Sequence[str], tables: tuple[np.ndarray, dict[str, list[int]]]
    ) -> np.ndarray | None:
        enders, ids_of = tables
        found = self.lexicon.follow(prefix)
        if not prefix:  # between words: every id but the capitals that start none of the words
            starts = set(found[0]) if found else set()
            mask = np.ones(len(enders), dtype=bool)
            offset = len(SPECIAL_TOKENS)
            for i, char in enumerate(chars):
                if char.isupper() and char.lower() not in starts:
                    mask[offset + i] = False
            return mask
        if found is None:
            return None  # a capitalized word of the seed that is none of them: left alone
        letters, whole = found
        mask = enders.copy() if whole else np.zeros(len(enders), dtype=bool)
        for letter in letters:
            mask[ids_of.get(letter, [])] = True
        return mask
