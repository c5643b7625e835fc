"""Scoring two models fairly on text one of them cannot spell: the stated cost of an unknown character.

    nats = score_with_unknowns(current, quotes, unknown_cost=math.log(len(candidate.vocab)))

A server's quotes often hold characters the current model never saw (digits, emoji, accented names)
while the candidate, grown for them, knows them. Dropping every such quote (as scoring once did) can
leave nothing to score; scoring only the characters both know hides what the candidate learnt. So both
models are scored on the same, whole text: every character the model knows costs its own negative
log-probability; a character it does not know is fed as the unknown id and costs ``unknown_cost`` nats,
what a uniform guess over the candidate's vocabulary would pay (``ln |V|``, about 4.2 nats for 70
characters). That is kinder than the truth (the current model gives such a character probability 0,
an infinite cost) and still far above what a model that learnt the character pays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from model.checkpoint import LoadedModel
from model.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from training.batching import pad_rows
from training.scoring import Score

MAX_TOKENS = 32_768


def encode_with_unknowns(text: str, loaded: LoadedModel) -> list[int]:
    """``[<bos>, ids..., <eos>]`` with the unknown id for every character the model lacks."""
    vocab = loaded.vocab
    return [BOS_ID, *(vocab.char_id(c) if c in vocab else UNK_ID for c in text), EOS_ID]


def uniform_cost(vocab_size: int) -> float:
    """The stated cost of an unknown character: a uniform guess over ``vocab_size`` ids."""
    return math.log(max(2, vocab_size))


@torch.inference_mode()
def score_with_unknowns(loaded: LoadedModel, quotes: Sequence[str], unknown_cost: float) -> Score:
    """Summed nats over every character and end-of-quote of ``quotes``; unknown ones cost ``unknown_cost``."""
    model = loaded.model
    was_training = model.training
    model.eval()
    rows = sorted((encode_with_unknowns(q, loaded) for q in quotes), key=len)
    nll, tokens, start = 0.0, 0, 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and (end + 1 - start) * len(rows[end]) <= MAX_TOKENS:
            end += 1
        ids = pad_rows(rows[start:end]).to(loaded.device)
        logits, _ = model(ids[:, :-1])
        targets = ids[:, 1:]
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)
        losses = torch.where(targets == UNK_ID, torch.full_like(losses, unknown_cost), losses)
        real = targets != PAD_ID
        nll += float(losses[real].sum())
        tokens += int(real.sum())
        start = end
    model.train(was_training)
    return Score(nll, tokens)
