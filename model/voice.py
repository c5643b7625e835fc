"""The voice a checkpoint carries besides its weights: how its character's quotes are worded and end.

    voice = Voice(Lexicon(["hey", "you"]), LengthCalibration((0, 40), (-1.0, 0.5)))
    metadata["voice"] = voice.to_metadata()            # plain values, stored in the checkpoint
    vocab = vocab.with_voice(Voice.from_metadata(metadata["voice"]))

``model.checkpoint`` attaches the stored voice to the loaded vocabulary, so every ``SamplingDecoder``
built from that vocabulary (bot, console, schedules, best-of, ``python -m model sample``) uses it:

- **lexicon**: while a word is being written, its letters so far (lower-cased) must stay a prefix of a
  lexicon word, and the word may end (a space, punctuation, end-of-quote) only where a lexicon word
  ends. The lexicon is the training corpus's words (names included) plus a general English word list.
  A word in progress that is not in the lexicon at all (typed in a seed) is left alone.
- **length calibration**: a bias on the end-of-quote logit per bin of the quote's length so far,
  fitted after training (``model.calibrate``) so that sampled lengths follow the validation quotes'.
- **phrasing** (``model.phrasing``): a word trigram model of the training quotes, fused into sampling.
- **copy guard** (``model.copy_guard``): no 24 characters of a training quote copied verbatim.
- **quote ends**: the characters the training quotes end with; a quote ends only after one of them.
- **capitals** (``model.capitals``): the words the quotes capitalize mid-sentence; no other word is, and
  the ones they never write in small letters are never written so.

A word here is a run of letters (``str.isalpha``) that may hold single apostrophes between letters
(``don't``, ``pat's``: ``words_of``), so "I'm" is one word and "to't" none; an apostrophe at a word's edge
is a quote mark. After a whole word an apostrophe may also start the possessive ``'s`` (of a name, or as
the lexicon holds it), or close a quotation if the character's quotes use apostrophes so
(``quote_apostrophes``). A lexicon stored before contractions were words (no word with an apostrophe)
reads as letter runs (``letter_runs``: ``don`` + ``t``), as it was fitted.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model.vocab import EOS_ID, SPECIAL_TOKENS

if TYPE_CHECKING:
    from model.capitals import Capitals
    from model.copy_guard import CopyGuard
    from model.phrasing import Phrasing

_TOP = "\U0010ffff"  # sorts after every character: prefix + _TOP bounds the words starting with prefix
_CACHE_LIMIT = 200_000
MAX_WORD = 40  # a longer run of letters is never a word in progress that the lexicon can judge
APOSTROPHE = "'"
WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters, single apostrophes between them
_EDGE_APOSTROPHE = re.compile(r"(?<![^\W\d_])'|'(?![^\W\d_])")


def _takes_possessive(word: str) -> bool:
    """Whether ``'s`` may follow ``word``: three letters or more (not "we's"), no apostrophe, not a
    plural's ``s``."""
    return len(word) > 2 and APOSTROPHE not in word and not word.endswith("s")


def words_of(text: str) -> list[str]:
    """The words of ``text``: runs of letters joined by single apostrophes (``don't``), lower-cased."""
    return [m.group(0).lower() for m in WORD_RE.finditer(text.replace("\u2019", APOSTROPHE))]


def letter_runs(text: str) -> list[str]:
    """The words of ``text`` as this module sees them: runs of letters, lower-cased."""
    words: list[str] = []
    start = None
    for i, char in enumerate(text):
        if char.isalpha():
            if start is None:
                start = i
        elif start is not None:
            words.append(text[start:i].lower())
            start = None
    if start is not None:
        words.append(text[start:].lower())
    return words


class Lexicon:
    """A sorted word list that answers: which letters may follow this prefix, and is it a word?"""

    def __init__(self, words: Iterable[str]):
        self.words: list[str] = sorted({w for word in words for w in words_of(word)})
        self.apostrophes = any(APOSTROPHE in w for w in self.words)  # else a lexicon of letter runs
        self._follow: dict[str, tuple[str, bool] | None] = {}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        i = bisect_left(self.words, word)
        return i < len(self.words) and self.words[i] == word

    def follow(self, prefix: str) -> tuple[str, bool] | None:
        """(letters that may come next, whether ``prefix`` is a whole word); ``None``: no word starts so."""
        if prefix in self._follow:
            return self._follow[prefix]
        words, n = self.words, len(prefix)
        lo, hi = bisect_left(words, prefix), bisect_left(words, prefix + _TOP)
        result: tuple[str, bool] | None = None
        if lo < hi:
            complete = words[lo] == prefix
            i, letters = lo + complete, []
            while i < hi:  # jump from one next letter to the next: O(letters x log words)
                letter = words[i][n]
                letters.append(letter)
                i = bisect_left(words, prefix + chr(ord(letter) + 1), i, hi)
            result = ("".join(letters), complete)
        if len(self._follow) >= _CACHE_LIMIT:
            self._follow.clear()
        self._follow[prefix] = result
        return result


@dataclass(frozen=True)
class LengthCalibration:
    """``bias[i]`` is added to the end-of-quote logit while the length is in ``[edges[i], edges[i+1])``."""

    edges: tuple[int, ...]
    bias: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.bias) or not self.edges or self.edges[0] != 0:
            raise ValueError("a length calibration needs one bias per bin, and its first bin starts at 0")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("length calibration edges must increase")

    def at(self, length: int) -> float:
        """The bias for a quote of ``length`` characters so far."""
        return self.bias[bisect_right(self.edges, length) - 1]


@dataclass
class Voice:
    """A lexicon and a length calibration (either may be absent), with per-vocabulary mask caches."""

    lexicon: Lexicon | None = None
    calibration: LengthCalibration | None = None
    info: dict = field(default_factory=dict)  # how it was fitted: plain values, shown by ``model info``
    phrasing: Phrasing | None = None  # the corpus's word model over ``lexicon`` (``model.phrasing``)
    copy_guard: CopyGuard | None = None  # the training quotes' windows a quote may not copy
    quote_ends: str = ""  # the characters the training quotes end with: a quote ends only after one
    capitals: Capitals | None = None  # the words the quotes capitalize mid-sentence (``model.capitals``)
    quote_apostrophes: bool = True  # whether the quotes use apostrophes as quote marks (not in a word)
    _masks: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _tables: tuple | None = field(default=None, repr=False)
    _small_lexicon: Lexicon | None = field(default=None, repr=False)

    def to_metadata(self) -> dict:
        """Plain values for a checkpoint's metadata."""
        out: dict = {"info": dict(self.info)}
        if self.lexicon is not None:
            out["lexicon"] = " ".join(self.lexicon.words)
        if self.calibration is not None:
            out["eos_edges"] = list(self.calibration.edges)
            out["eos_bias"] = [float(b) for b in self.calibration.bias]
        if self.phrasing is not None:
            out["phrasing"] = self.phrasing.to_metadata()
        if self.copy_guard is not None:
            out["copy_guard"] = self.copy_guard.to_metadata()
        if self.quote_ends:
            out["quote_ends"] = self.quote_ends
        if self.capitals is not None:
            out["capitals"] = self.capitals.to_metadata()
        out["quote_apostrophes"] = self.quote_apostrophes
        return out

    @classmethod
    def from_metadata(cls, stored: dict) -> Voice:
        """The voice saved by ``to_metadata``."""
        lexicon = Lexicon(stored["lexicon"].split()) if stored.get("lexicon") else None
        calibration = None
        if stored.get("eos_edges"):
            edges = tuple(int(e) for e in stored["eos_edges"])
            calibration = LengthCalibration(edges, tuple(float(b) for b in stored["eos_bias"]))
        from model.capitals import Capitals
        from model.copy_guard import CopyGuard
        from model.phrasing import Phrasing  # these build on this module

        phrasing = None
        if stored.get("phrasing") is not None and lexicon is not None:
            phrasing = Phrasing.from_metadata(stored["phrasing"], lexicon)
        guard = CopyGuard.from_metadata(stored["copy_guard"]) if stored.get("copy_guard") else None
        info = dict(stored.get("info", {}))
        capitals = Capitals.from_metadata(stored["capitals"]) if stored.get("capitals") is not None else None
        ends = str(stored.get("quote_ends", ""))
        quote_marks = bool(stored.get("quote_apostrophes", True))
        return cls(lexicon, calibration, info, phrasing, guard, ends, capitals, quote_marks)

    def vocab_tables(self, chars: Sequence[str]) -> tuple[np.ndarray, dict[str, list[int]]]:
        """Ids that end a word (every non-letter, end-of-quote included) and each letter's ids (2 cases)."""
        if self._tables is None or (self._tables[0] is not chars and self._tables[0] != tuple(chars)):
            self._masks.clear()  # masks are per vocabulary
            offset = len(SPECIAL_TOKENS)
            enders = np.ones(offset + len(chars), dtype=bool)
            ids_of: dict[str, list[int]] = {}
            for i, char in enumerate(chars):
                if char.isalpha():
                    enders[offset + i] = False
                    ids_of.setdefault(char.lower(), []).append(offset + i)
                elif char == APOSTROPHE and self.lexicon is not None and self.lexicon.apostrophes:
                    ids_of[APOSTROPHE] = [offset + i]  # inside a word it goes on (don't); still an ender
            enders[:offset] = False
            enders[EOS_ID] = True
            self._tables = (chars if isinstance(chars, tuple) else tuple(chars), enders, ids_of)
        return self._tables[1], self._tables[2]

    def word_mask(self, prefix: str, chars: Sequence[str], small: bool = False) -> np.ndarray | None:
        """Allowed next ids [vocab] (bool) after the word in progress ``prefix``; ``None``: any.

        ``small``: the word began with a small letter, so it may not become one the character always
        capitalizes (``Capitals.proper``: "i", "pat"), which the lexicon then leaves out.
        """
        lexicon = self._lexicon_for(small)
        if lexicon is None or len(prefix) > MAX_WORD:
            return None
        enders, ids_of = self.vocab_tables(chars)
        key = "\0" + prefix if lexicon is not self.lexicon else prefix
        if key in self._masks:
            return self._masks[key]
        found = lexicon.follow(prefix)
        mask = None
        if found is not None:
            # Between words ("") anything but a letter no word starts with; in a word, an end only if whole.
            mask = enders.copy() if found[1] or not prefix else np.zeros_like(enders)
            for letter in found[0]:
                mask[ids_of.get(letter, [])] = True
            if not mask.any():  # the lexicon's way on needs letters this vocabulary lacks
                mask = None
        if lexicon.apostrophes:
            mask = self._after_apostrophe(prefix, mask, enders, ids_of, lexicon)
        if len(self._masks) >= _CACHE_LIMIT:
            self._masks.clear()
        self._masks[key] = mask
        return mask

    def _lexicon_for(self, small: bool) -> Lexicon | None:
        """The lexicon, or for a word begun in small letters, the lexicon without the words always
        capitalized (built once)."""
        if not small or self.lexicon is None or self.capitals is None or not self.capitals.proper:
            return self.lexicon
        if self._small_lexicon is None:
            proper = self.capitals.proper  # and their forms: "monday's" goes with "monday"
            self._small_lexicon = Lexicon(
                w for w in self.lexicon.words if w.split(APOSTROPHE)[0] not in proper
            )
        return self._small_lexicon

    def row_mask(self, history: Sequence[int], prefix: str, chars: Sequence[str]) -> np.ndarray | None:
        """``word_mask`` (for a word begun in small letters, without the words always capitalized),
        and-ed with the capitals' mask (``model.capitals``); ``None``: any."""
        if self.capitals is None:
            return self.word_mask(prefix, chars)
        mask = self.word_mask(prefix, chars, word_starts_small(history, chars, prefix))
        capitals = self.capitals.mask(history, chars, prefix, self.vocab_tables(chars))
        if capitals is None or mask is None:
            return mask if capitals is None else capitals
        both = mask & capitals
        return both if both.any() else mask

    def _possessive(self, word: str) -> bool:
        """Whether ``'s`` may follow ``word``: a name the quotes capitalize ("Gerald's") or a possessive the
        lexicon holds ("world's"); with no capitals known, any word that could take one (not "much's")."""
        if not _takes_possessive(word):
            return False
        return self.capitals is None or word in self.capitals.proper or f"{word}'s" in self.lexicon

    def _after_apostrophe(
        self,
        prefix: str,
        mask: np.ndarray | None,
        enders: np.ndarray,
        ids_of: dict[str, list[int]],
        lexicon: Lexicon,
    ) -> np.ndarray | None:
        """After a whole word's apostrophe, the possessive ``'s`` of a word that takes one (``word's`` is
        then whole) and, if the character's quotes use quote marks of apostrophes, a closing one (no
        letter). If they never do, an apostrophe comes only where a word goes on with it."""
        apostrophe = ids_of.get(APOSTROPHE, [])
        if prefix.endswith(APOSTROPHE):
            base = prefix[:-1]
            out = np.zeros_like(enders) if mask is None else mask.copy()
            if base in lexicon and self.quote_apostrophes:
                out |= enders
            if base in lexicon and self._possessive(base):
                out[ids_of.get("s", [])] = True
            return out if out.any() else enders.copy()
        base = prefix[:-2]
        if prefix.endswith("'s") and base in lexicon and self._possessive(base):
            mask = enders.copy() if mask is None else mask | enders
        if self.quote_apostrophes or mask is None or not mask[apostrophe].any():
            return mask
        goes_on = APOSTROPHE in (lexicon.follow(prefix) or ("",))[0]
        if not goes_on and not (prefix in lexicon and self._possessive(prefix)):
            mask = mask.copy()
            mask[apostrophe] = False  # no quote mark of an apostrophe: the character writes none
        return mask


def uses_quote_apostrophes(quotes: Iterable[str]) -> bool:
    """Whether any of ``quotes`` has an apostrophe that is not between two letters (a quote mark, ``o'``)."""
    return any(_EDGE_APOSTROPHE.search(q.replace("\u2019", APOSTROPHE)) for q in quotes)


def quote_endings(quotes: Sequence[str], share: float = 0.02, cover: float = 0.8) -> str:
    """The last characters of at least ``share`` of ``quotes`` each, if together they end ``cover`` of
    them (a character whose quotes end anyhow gets no ending rule: ``""``)."""
    ends = Counter(q[-1] for q in quotes if q)
    total = sum(ends.values())
    kept = sorted(c for c, n in ends.items() if n >= max(2, share * total))
    return "".join(kept) if total and sum(ends[c] for c in kept) >= cover * total else ""


def word_starts_small(history: Sequence[int], chars: Sequence[str], prefix: str) -> bool:
    """Whether the word in progress ``prefix`` (at the end of ``history``) began with a small letter."""
    start = len(history) - len(prefix)
    if not prefix or start <= 0 or history[start] < len(SPECIAL_TOKENS):
        return False
    return chars[history[start] - len(SPECIAL_TOKENS)].islower()


def word_in_progress(history: Sequence[int], chars: Sequence[str], apostrophes: bool = False) -> str:
    """The lower-cased word at the end of ``history`` (ids), up to one past ``MAX_WORD`` characters.

    With ``apostrophes`` (a lexicon with contractions) single apostrophes count as part of the word, but
    not at its start (an opening quote mark): ``"say 'don'"`` -> ``"don'"``.
    """
    offset = len(SPECIAL_TOKENS)
    letters: list[str] = []
    for token in reversed(history[-(MAX_WORD + 1) :]):
        char = chars[token - offset] if token >= offset else ""
        if not char.isalpha() and not (apostrophes and char == APOSTROPHE and letters[-1:] != [char]):
            break
        letters.append(char)
    return "".join(reversed(letters)).lstrip(APOSTROPHE).lower()
