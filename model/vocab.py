"""Character vocabulary with special ids, and the policy for characters a model has never seen.

    vocab = Vocab.from_texts(["Hey, you.", "Me?"])
    ids = vocab.encode("Hey")            # [id('H'), id('e'), id('y')]
    vocab.decode(ids) == "Hey"

Ids 0-3 are special: padding, begin-of-quote, end-of-quote and unknown. Characters follow in sorted
order, so a vocabulary built from the same text always gives the same ids. ``grow`` appends new
characters at the end and never moves an old id, which is what fine-tuning on new text relies on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.voice import Voice

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")

# Obvious stand-ins for characters a vocabulary often lacks: typographic quotes and dashes that
# phones and word processors insert, and spacing characters. A value may be several characters.
REPLACEMENTS = {
    "\u2018": "'",  # left single quote
    "\u2019": "'",  # right single quote / apostrophe
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',  # left double quote
    "\u201d": '"',  # right double quote
    "\u201e": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # ellipsis
    "\u00a0": " ",  # no-break space
    "\u2009": " ",
    "\u202f": " ",
    "\t": " ",
    "\n": " ",
    "\r": " ",
}


class UnknownPolicy(str, Enum):
    """What to do with seed characters the vocabulary does not know.

    - ``replace`` (default): swap in an obvious stand-in (curly quotes to straight ones, an accented
      letter to its base letter, a letter to its other case); refuse if anything is still unknown.
    - ``drop``: swap in stand-ins where obvious, silently drop the rest.
    - ``refuse``: refuse any character that is not in the vocabulary, with no replacements.
    """

    REPLACE = "replace"
    DROP = "drop"
    REFUSE = "refuse"


SHOWN_UNKNOWN = 5  # unknown characters named in an error; the rest are counted


class UnknownCharactersError(ValueError):
    """A seed holds characters the model has never seen; ``chars`` lists them in order of appearance."""

    def __init__(self, chars: Sequence[str]):
        self.chars = list(dict.fromkeys(chars))
        # A handful named, then a count: a seed of 200 strange characters must not become a message
        # too long to send.
        shown = ", ".join(_describe(c) for c in self.chars[:SHOWN_UNKNOWN])
        more = len(self.chars) - SHOWN_UNKNOWN
        if more > 0:
            shown += f" and {more} more ({len(self.chars)} different characters in all)"
        super().__init__(f"the model has never seen these characters: {shown}")


def _describe(char: str) -> str:
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    return f"{char!r} ({name.lower()})" if char.isprintable() else name.lower()


@dataclass(frozen=True)
class Vocab:
    """An immutable character vocabulary; ``chars[i]`` has id ``i + len(SPECIAL_TOKENS)``.

    ``voice`` (a ``model.voice.Voice``, attached by ``model.checkpoint`` when the file stores one) is what
    sampling needs beyond ids: the lexicon and the end-of-quote calibration. It never changes an id.
    """

    chars: tuple[str, ...]
    voice: Voice | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocabulary characters must be unique")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("vocabulary entries must be single characters")
        object.__setattr__(self, "_index", {c: i + len(SPECIAL_TOKENS) for i, c in enumerate(self.chars)})

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocab:
        """Build a vocabulary of every character in ``texts``, in sorted order."""
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        return cls(tuple(sorted(seen)))

    def __len__(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.chars)

    def __contains__(self, char: object) -> bool:
        return char in self._index  # type: ignore[attr-defined]

    def char_id(self, char: str) -> int:
        """The id of one known character (``KeyError`` if unknown)."""
        return self._index[char]  # type: ignore[attr-defined]

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; raises ``UnknownCharactersError`` rather than guess at an unknown character."""
        index = self._index  # type: ignore[attr-defined]
        missing = [c for c in text if c not in index]
        if missing:
            raise UnknownCharactersError(missing)
        return [index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; special ids are skipped."""
        offset = len(SPECIAL_TOKENS)
        return "".join(self.chars[i - offset] for i in ids if i >= offset)

    def missing(self, text: str) -> list[str]:
        """Characters of ``text`` not in the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self))

    def grow(self, texts: Iterable[str]) -> Vocab:
        """A vocabulary with the new characters of ``texts`` appended; every old id is kept."""
        new = sorted({c for t in texts for c in t} - set(self.chars))
        return Vocab(self.chars + tuple(new))

    def prepare_seed(self, seed: str, policy: UnknownPolicy | str = UnknownPolicy.REPLACE) -> str:
        """Apply the unknown-character policy to a seed and return text that ``encode`` accepts."""
        policy = UnknownPolicy(policy)
        seed = unicodedata.normalize("NFC", seed)
        if policy is UnknownPolicy.REFUSE:
            self.encode(seed)
            return seed
        out: list[str] = []
        unknown: list[str] = []
        for char in seed:
            stand_in = char if char in self else self._stand_in(char)
            if stand_in is None:
                unknown.append(char)
            else:
                out.append(stand_in)
        if unknown and policy is UnknownPolicy.REPLACE:
            raise UnknownCharactersError(unknown)
        return "".join(out)

    def _stand_in(self, char: str) -> str | None:
        """An obvious known replacement for ``char``, or ``None`` when there is none."""
        candidates = []
        if char in REPLACEMENTS:
            candidates.append(REPLACEMENTS[char])
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if base and base != char:
            candidates.append(base)
        candidates += [char.lower(), char.upper(), base.lower(), base.upper()]
        for candidate in candidates:
            if candidate and candidate != char and all(c in self for c in candidate):
                return candidate
        return None

    def with_voice(self, voice: Voice | None) -> Vocab:
        """The same ids, with ``voice`` attached."""
        return replace(self, voice=voice)

    def to_list(self) -> list[str]:
        """The characters as a plain list, for a checkpoint."""
        return list(self.chars)

    @classmethod
    def from_list(cls, chars: Sequence[str]) -> Vocab:
        """Rebuild a vocabulary saved with ``to_list``."""
        return cls(tuple(chars))
