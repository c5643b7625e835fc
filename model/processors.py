"""The pieces of the anti-repetition chain: pure functions on ``[batch, vocab]`` logits, and per-row trackers.

    out = repetition_penalties(logits, counts, penalty, presence, frequency)
    out = dry_penalty(out, run_lengths, multiplier, base, allowed_length)
    out = block_ngrams(out, run_lengths, n)
    out = min_p_filter(top_p_filter(top_k_filter(out, k), p), min_p)
    ids = sample(out, temperature, uniforms)

Every per-row parameter is a ``[batch]`` tensor, so one batch can mix rows with different settings.
``model.sampling`` strings these together in its documented order; each is tested alone on hand-made
logits in tests/model/test_processors.py.

``RepeatTracker`` keeps, for one growing history, how long a run each character would repeat if it came
next; the DRY penalty and n-gram blocking both read it. ``find_loop`` is the loop guard's test of a tail.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

NEG_INF = float("-inf")
DRY_MAX_EXPONENT = 30  # base <= 8 and multiplier <= 10 keep 10 * 8**30 ~ 1e28 inside float32


def repetition_penalties(
    logits: Tensor, counts: Tensor, penalty: Tensor, presence: Tensor, frequency: Tensor
) -> Tensor:
    """Token-level penalties for characters seen in each row's recent window.

    ``counts`` [batch, vocab] holds each character's occurrences in the window (exempt characters
    already zeroed). A seen character's logit is divided by ``penalty`` when positive and multiplied by
    it when negative (so it always becomes less likely), then ``presence`` is subtracted once and
    ``frequency`` once per occurrence.
    """
    counts = counts.to(logits.dtype)
    seen = counts > 0
    p = penalty[:, None].to(logits.dtype)
    penalised = torch.where(logits > 0, logits / p, logits * p)
    out = torch.where(seen, penalised, logits)
    return out - presence[:, None].to(logits.dtype) * seen - frequency[:, None].to(logits.dtype) * counts


def dry_penalty(
    logits: Tensor, run_lengths: Tensor, multiplier: Tensor, base: Tensor, allowed_length: Tensor
) -> Tensor:
    """DRY: lower a character that would extend a repeat of an earlier run of length L >= allowed_length.

    ``run_lengths`` [batch, vocab]: for each character, the length of the longest run of the history's
    tail that also occurs earlier followed by that character (0 if none). The penalty is
    ``multiplier * base ** (L - allowed_length)``, the exponent capped at ``DRY_MAX_EXPONENT``.
    """
    lengths = run_lengths.to(logits.dtype)
    allowed = allowed_length[:, None].to(logits.dtype)
    exponent = (lengths - allowed).clamp(min=0, max=DRY_MAX_EXPONENT)
    penalty = multiplier[:, None].to(logits.dtype) * base[:, None].to(logits.dtype) ** exponent
    applies = (lengths >= allowed) & (multiplier[:, None] > 0)
    return logits - torch.where(applies, penalty, torch.zeros_like(penalty))


def block_ngrams(logits: Tensor, run_lengths: Tensor, n: Tensor) -> Tensor:
    """No-repeat n-gram blocking: forbid a character that would complete an n-gram seen before.

    The last ``n - 1`` characters plus the candidate form an earlier n-gram exactly when the candidate's
    run length is at least ``n - 1``. Rows with ``n == 0`` are left alone.
    """
    blocked = (n[:, None] > 0) & (run_lengths >= (n[:, None] - 1))
    return logits.masked_fill(blocked, NEG_INF)


def top_k_filter(logits: Tensor, k: Tensor) -> Tensor:
    """Keep each row's ``k`` highest logits (ties at the k-th value are kept); ``k == 0`` keeps all."""
    vocab = logits.shape[-1]
    k = torch.where(k > 0, k, torch.full_like(k, vocab)).clamp(max=vocab).long()
    kth = logits.sort(dim=-1, descending=True).values.gather(1, (k - 1)[:, None])  # [batch, 1]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: Tensor, top_p: Tensor) -> Tensor:
    """Nucleus: keep the smallest set of most likely characters whose probability reaches ``top_p``.

    A character is kept while the probability mass strictly before it (in descending order) is below
    ``top_p``, so the most likely one always survives; ``top_p == 1`` keeps everything.
    """
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.double(), dim=-1)
    before = probs.cumsum(dim=-1) - probs
    keep_sorted = (before < top_p[:, None].double()) | (top_p[:, None] >= 1.0)
    keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
    return logits.masked_fill(~keep, NEG_INF)


def min_p_filter(logits: Tensor, min_p: Tensor) -> Tensor:
    """Keep characters whose probability is at least ``min_p`` times the row's most likely one."""
    # p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p); min_p == 0 keeps everything.
    threshold = logits.max(dim=-1, keepdim=True).values + torch.log(min_p[:, None].to(logits.dtype))
    return logits.masked_fill(logits < threshold, NEG_INF)


def sample(logits: Tensor, temperature: Tensor, uniforms: Tensor) -> Tensor:
    """Draw one id per row from ``softmax(logits / temperature)`` by inverse CDF (temperature 0: argmax).

    ``uniforms`` [batch] in [0, 1) come from each row's own random stream, so a row's choice does not
    depend on the other rows of the batch.
    """
    greedy = temperature <= 0
    t = torch.where(greedy, torch.ones_like(temperature), temperature).double()
    probs = torch.softmax(logits.double() / t[:, None], dim=-1)
    cdf = probs.cumsum(dim=-1)
    # The first index whose cumulative mass exceeds u * total: never a zero-probability character, as
    # long as rounding cannot push u * total past the last possible one (hence the clamp).
    target = (uniforms.double() * cdf[:, -1])[:, None]
    drawn = torch.searchsorted(cdf, target, right=True).squeeze(1)
    last_possible = probs.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)
    drawn = torch.minimum(drawn, last_possible)
    return torch.where(greedy, logits.argmax(dim=-1), drawn)


def window_counts(windows: Sequence[np.ndarray], vocab_size: int, exempt: np.ndarray) -> Tensor:
    """[batch, vocab] occurrence counts of each row's window of ids, exempt characters zeroed.

    ``exempt`` is a [batch, vocab] boolean array. One ``bincount`` over all rows at once.
    """
    offsets = [w.astype(np.int64) + row * vocab_size for row, w in enumerate(windows)]
    flat = np.concatenate(offsets) if offsets else np.zeros(0, dtype=np.int64)
    counts = np.bincount(flat, minlength=len(windows) * vocab_size).reshape(len(windows), vocab_size)
    counts[exempt] = 0
    return torch.from_numpy(counts)


class RepeatTracker:
    """For one growing history, how long a repeated run each next character would extend.

    ``match[i]`` is the length of the longest common suffix of ``ids[:i]`` and the whole history: if
    it is L, the last L characters also occurred just before position i, so choosing ``ids[i]`` next
    would repeat a run of L + 1. Appending a character updates every entry in one vectorised O(n) pass
    (``match'[i] = match[i-1] + 1`` where ``ids[i-1]`` equals the new character, else 0), so a step
    costs O(history), never O(history^2).
    """

    def __init__(self) -> None:
        self.ids = np.zeros(64, dtype=np.int64)
        self.match = np.zeros(64, dtype=np.int64)
        self.n = 0
        self.longest = 0  # max(match): no run, loop or n-gram can be longer, so most steps stop early

    def extend(self, ids: Sequence[int]) -> None:
        """Append characters one at a time."""
        for char_id in ids:
            self.append(char_id)

    def append(self, char_id: int) -> None:
        n = self.n
        if n + 1 > len(self.ids):
            self.ids = np.concatenate([self.ids, np.zeros_like(self.ids)])
            self.match = np.concatenate([self.match, np.zeros_like(self.match)])
        if n:
            updated = np.where(self.ids[:n] == char_id, self.match[:n] + 1, 0)
            self.match[1 : n + 1] = updated
            self.longest = int(updated.max())
        self.match[0] = 0
        self.ids[n] = char_id
        self.n = n + 1

    def tail_loop(
        self, start: int = 0, repeats: int = 3, min_unit: int = 4, max_period: int = 100
    ) -> int | None:
        """``find_loop`` on the tracked history, vectorised: the tail has period p over ``span`` characters
        exactly when ``match[n - p] >= span - p``."""
        n = self.n
        if repeats < 2 or n - start < 1:
            return None
        period, unit = _periods(min_unit, max_period)
        span, cut = unit * repeats, unit * (repeats - 1)
        if self.longest < _least_match(min_unit, max_period, repeats):  # no tail repeats that much
            return None
        usable = (span <= n) & (cut <= n - start)
        if not usable.any():
            return None
        period, span, cut = period[usable], span[usable], cut[usable]
        hits = np.flatnonzero(self.match[n - period] >= span - period)
        return int(cut[hits[0]]) if hits.size else None

    def history(self) -> np.ndarray:
        """The ids appended so far (a view)."""
        return self.ids[: self.n]

    def run_lengths(self, min_length: int) -> tuple[np.ndarray, np.ndarray]:
        """``(chars, lengths)``: every character with a run of at least ``min_length``, and its longest."""
        if self.longest < min_length:  # the usual case: nothing repeats that long
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        match = self.match[: self.n]
        positions = np.flatnonzero(match >= min_length)
        if positions.size == 0:
            return positions, positions
        chars, lengths = self.ids[positions], match[positions]
        order = np.argsort(lengths, kind="stable")
        chars, lengths = chars[order], lengths[order]
        # After sorting by length, the last occurrence of each character holds its longest run.
        unique, last_from_end = np.unique(chars[::-1], return_index=True)
        return unique, lengths[len(lengths) - 1 - last_from_end]


@functools.cache
def _periods(min_unit: int, max_period: int) -> tuple[np.ndarray, np.ndarray]:
    """Periods 1..max_period and the unit each makes: the period repeated up to ``min_unit`` characters."""
    period = np.arange(1, max_period + 1)
    return period, period * -(-min_unit // period)


@functools.cache
def _least_match(min_unit: int, max_period: int, repeats: int) -> int:
    """The smallest ``match`` value any period's loop test can accept (``span - period``)."""
    period, unit = _periods(min_unit, max_period)
    return int((unit * repeats - period).min())


def find_loop(
    ids: Sequence[int], start: int = 0, repeats: int = 3, min_unit: int = 4, max_period: int = 100
) -> int | None:
    """How many trailing ids to cut if ``ids`` ends in a loop, else ``None``.

    A loop is a unit of at least ``min_unit`` characters (a period p repeated ``ceil(min_unit / p)``
    times, so ``"aaaa"`` and ``"abab"`` count) repeated ``repeats`` times in a row at the very end, of
    which the copies after the first were all generated (they lie at or after ``start``, the seed's
    length): a seed that repeats itself is never cut. The cut keeps the first copy.
    """
    n = len(ids)
    generated = n - start
    if repeats < 2 or generated < 1:
        return None
    last = ids[-1]
    for period, unit in zip(*(a.tolist() for a in _periods(min_unit, max_period)), strict=True):
        cut = unit * (repeats - 1)
        if cut > generated or unit * repeats > n:
            if period >= min_unit:  # units only grow from here on
                break
            continue
        if ids[n - 1 - period] != last:  # cheap test before comparing slices
            continue
        tail = list(ids[n - unit * repeats :])
        if tail[period:] == tail[:-period]:
            return cut
    return None
