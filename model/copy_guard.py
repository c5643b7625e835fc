"""The no-copy rule: a quote does not repeat ``WINDOW`` characters of the character's own quotes verbatim.

    guard = CopyGuard.fit(train_quotes)                          # hashes of every 24-character window
    allowed = guard.allowed(history, chars)                      # bool per vocabulary id, or None

Fusing the corpus's word model into sampling (``model.phrasing``) makes quotes sound like the character,
and also pulls them along the character's own sentences; a bot that recites its corpus is a Markov bot.
So a character that would complete a window of ``WINDOW`` characters found in a training quote is
forbidden: the quote must leave the original sentence before it has copied that much. Where nothing
else may follow (inside a word with one way to go on, the lexicon allows one letter) the copy goes on
to the word's end; ``WINDOW`` is 24 so that even then a quote rarely shares 30 characters (the voice
benchmark's measure) with a training quote.

The windows are stored as sorted 32-bit hashes (a polynomial over code points, mixed, cut to its top
half), 4 bytes per training character; a false match (about one lookup in 4 billion per stored window)
only forbids one character. The check is one hash of the row's last ``WINDOW - 1`` characters, then
every candidate character's key looked up in a bitmap of the keys' low ``_BITMAP_BITS`` bits (2 MB, built
on load), and only the few that pass it (a window's key, or a 1-in-18 false alarm for the bundled
model's 919,217 windows) looked up in the sorted keys (a ``searchsorted`` of every candidate into them
took about 1 ms a step of 32 rows, a third of the LSTM step's time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from model.vocab import SPECIAL_TOKENS

WINDOW = 24
_BASE = 0x100000001B3  # FNV's 64-bit prime: any odd multiplier mixes well enough here
_MASK = (1 << 64) - 1
_SEPARATOR = "\x00"  # between quotes: no window a sampler can write crosses it
_BITMAP_BITS = 24  # the prefilter's size: 2**24 bits


def _keys(hashes: np.ndarray) -> np.ndarray:
    """32-bit keys of 64-bit window hashes: mixed first (splitmix64's finaliser), so that the last
    character, which only touches the low bits of the polynomial, moves the key too."""
    z = hashes.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return ((z ^ (z >> np.uint64(31))) >> np.uint64(32)).astype(np.uint32)


class CopyGuard:
    """Sorted hashes of the training quotes' ``window``-character windows."""

    def __init__(self, hashes: np.ndarray, window: int = WINDOW):
        self.hashes = np.unique(np.asarray(hashes).astype(np.uint32))
        self.window = window
        self._codes: tuple[Sequence[str], np.ndarray] | None = None
        self._power_table = np.zeros(0, dtype=np.uint64)
        low = self.hashes & np.uint32((1 << _BITMAP_BITS) - 1)
        bits = np.zeros(1 << _BITMAP_BITS, dtype=bool)
        bits[low] = True
        self._bitmap = np.packbits(bits, bitorder="little")  # bit k of byte j: low bits 8j + k seen

    @classmethod
    def fit(cls, quotes: Iterable[str], window: int = WINDOW) -> CopyGuard:
        codes = np.array([ord(c) for c in _SEPARATOR.join(quotes)], dtype=np.uint64)
        if len(codes) < window:
            return cls(np.zeros(0, dtype=np.uint32), window)
        count = len(codes) - window + 1
        hashes = np.zeros(count, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i in range(window):  # uint64 arithmetic wraps: the hash is modulo 2**64
                hashes = hashes * np.uint64(_BASE) + codes[i : i + count]
        return cls(_keys(hashes), window)

    def to_metadata(self) -> dict:
        return {"window": self.window, "hashes": torch.from_numpy(self.hashes.view(np.int32).copy())}

    @classmethod
    def from_metadata(cls, stored: dict) -> CopyGuard:
        return cls(np.asarray(stored["hashes"]).view(np.uint32), int(stored["window"]))

    def _char_codes(self, chars: Sequence[str]) -> np.ndarray:
        if self._codes is None or self._codes[0] is not chars:
            offset = len(SPECIAL_TOKENS)
            codes = np.zeros(offset + len(chars), dtype=np.uint64)
            codes[offset:] = [ord(c) for c in chars]
            self._codes = (chars, codes)
        return self._codes[1]

    def _powers(self, count: int) -> np.ndarray:
        """``BASE ** (count - 1 - k)`` for k in ``range(count)``, modulo 2**64."""
        if len(self._power_table) != count:
            powers = [1]
            for _ in range(count - 1):
                powers.append(powers[-1] * _BASE & _MASK)
            self._power_table = np.array(powers[::-1], dtype=np.uint64)
        return self._power_table

    def copying(self, histories: Sequence[Sequence[int]], chars: Sequence[str]) -> np.ndarray:
        """[rows, vocab] bool: which ids would complete a window of a training quote (all rows at once).

        A row with fewer than ``window - 1`` characters since its start copies nothing; end-of-quote and
        the other special ids never copy.
        """
        codes = self._char_codes(chars)
        need, offset = self.window - 1, len(SPECIAL_TOKENS)
        hits = np.zeros((len(histories), len(codes)), dtype=bool)
        rows = [r for r, h in enumerate(histories) if len(h) >= need and min(h[len(h) - need :]) >= offset]
        if not rows or not len(self.hashes) or need < 1:
            return hits
        tails = codes[np.array([histories[r][len(histories[r]) - need :] for r in rows])]  # [n, need]
        with np.errstate(over="ignore"):  # the polynomial of each tail, modulo 2**64 as in ``fit``
            h = tails @ self._powers(need)  # sum of code * BASE**(need - 1 - k): Horner's rule unrolled
            keys = _keys(h[:, None] * np.uint64(_BASE) + codes[None, :])  # [n, vocab]
        low = keys & np.uint32((1 << _BITMAP_BITS) - 1)
        hit = (self._bitmap[low >> np.uint32(3)] >> (low & np.uint32(7)).astype(np.uint8)) & np.uint8(1) == 1
        hit[:, :offset] = False
        if hit.any():  # only the bitmap's hits (true or false) are looked up in the sorted keys
            maybe = keys[hit]
            found = self.hashes[np.minimum(np.searchsorted(self.hashes, maybe), len(self.hashes) - 1)]
            hit[hit] = found == maybe
        hits[rows] = hit
        return hits

    def allowed(self, history: Sequence[int], chars: Sequence[str]) -> np.ndarray | None:
        """Per vocabulary id: may it come next without copying a window? ``None``: every id may."""
        hit = self.copying([history], chars)[0]
        return ~hit if hit.any() else None


def block_copies(
    x: torch.Tensor,
    guard: CopyGuard,
    histories: Sequence[list[int]],
    chars: Sequence[str],
    on: Sequence[bool],
) -> torch.Tensor:
    """Forbid (-inf) each row's ids that would copy a window; a row it would empty keeps its choices."""
    rows = [i for i, use in enumerate(on) if use]
    if not rows:
        return x
    hits = torch.from_numpy(guard.copying([histories[i] for i in rows], chars))
    if not hits.any():
        return x
    index = torch.tensor(rows)
    blocked = x[index].masked_fill(hits, float("-inf"))
    keep = torch.isfinite(blocked).any(dim=-1, keepdim=True)
    out = x.clone()
    out[index] = torch.where(keep, blocked, x[index])
    return out
