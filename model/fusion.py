"""Shallow fusion: the character's phrasing (``model.phrasing``) applied to a batch of character logits.

    x = fuse_phrasing(logits, voice, histories, vocab.chars, weights=[1.0] * len(histories))

One of the sampling chain's steps (``model.sampling``), after the lexicon and before the no-copy guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from model.vocab import SPECIAL_TOKENS
from model.voice import Voice, word_in_progress


@lru_cache(maxsize=16)
def _upper_ids(chars: tuple[str, ...]) -> torch.Tensor:
    """The ids of capital letters."""
    return torch.tensor([False] * len(SPECIAL_TOKENS) + [c.isupper() for c in chars])


def fuse_phrasing(
    x: torch.Tensor,
    voice: Voice,
    histories: Sequence[list[int]],
    chars: Sequence[str],
    weights: Sequence[float],
    prefixes: Sequence[str] | None = None,
) -> torch.Tensor:
    """Each row's logits [batch, vocab] plus ``weight * log q`` of ``voice.phrasing`` (weight 0: as is).

    In a word, each letter's ids (both cases) get that letter's log q and every id that ends a word
    gets the log q of ending; letters no lexicon word continues with get -inf, and so do capitals after
    a small letter. Between words only the letters move, shifted so that their total share stays what
    the character model gave them.
    """
    phrasing = voice.phrasing
    if phrasing is None or not any(weights):
        return x
    tables = voice.vocab_tables(chars)
    rows, biases, used, in_word, after_small = [], [], [], [], []
    letters = torch.zeros(0, dtype=torch.bool)  # which ids are letters: one mask for the vocabulary
    for i, (history, weight) in enumerate(zip(histories, weights, strict=True)):
        if not weight:
            continue
        if prefixes is None:
            prefix = word_in_progress(history, chars, phrasing.lexicon.apostrophes)
        else:
            prefix = prefixes[i]
        found = phrasing.bias(phrasing.context_of(history, chars, len(prefix)), prefix, tables)
        if found is None:
            continue
        rows.append(i)
        biases.append(found[0])
        letters = found[1]
        used.append(weight)
        in_word.append(bool(prefix))
        after_small.append(bool(prefix) and chars[history[-1] - len(SPECIAL_TOKENS)].islower())
    if not rows:
        return x
    index = torch.tensor(rows)
    before = x[index]
    moved = before + torch.stack(biases) * torch.tensor(used)[:, None]
    capitals = torch.tensor(after_small)[:, None] & _upper_ids(tuple(chars))[None, :]
    moved = moved.masked_fill(capitals, float("-inf"))  # no "printeR" inside a word
    # Between words: letters shifted back to the share the character model gave them.
    ninf = float("-inf")
    shift = torch.logsumexp(before.masked_fill(~letters, ninf), -1) - torch.logsumexp(
        moved.masked_fill(~letters, ninf), -1
    )
    between = torch.where(letters, moved + shift[:, None], before)
    word = torch.tensor(in_word)[:, None]
    fused = torch.where(word, moved, between)
    usable = torch.isfinite(fused).any(-1) & (torch.tensor(in_word) | torch.isfinite(shift))
    out = x.clone()
    out[index] = torch.where(usable[:, None], fused, before)
    return out
