"""Scoring a model on quotes: nats and bits per character, each quote from its begin-of-quote.

    score = score_quotes(model, encode_quotes(val, vocab))
    score.nats, score.bits_per_char, score.tokens

Every quote is run whole from a zero state, in eval mode (dropout off), exactly as generation runs
it; the characters predicted are the quote's characters and its end-of-quote (``<bos>`` is given,
not predicted). The mean is over all those predictions, so long quotes weigh by their length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.network import CharLSTM
from model.vocab import PAD_ID
from training.batching import pad_rows

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Score:
    """Summed negative log-likelihood (nats) over ``tokens`` predicted characters."""

    nll: float
    tokens: int

    @property
    def nats(self) -> float:
        return self.nll / self.tokens if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.nats / LN2


def masked_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of ``logits`` [B, T, V] against ``targets`` [B, T], padding ignored."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=PAD_ID,
        reduction="sum",
    )


@torch.inference_mode()
def score_quotes(
    model: CharLSTM,
    sequences: Sequence[Sequence[int]],
    max_tokens: int = 32_768,
    rank: int = 0,
    world_size: int = 1,
) -> Score:
    """Score ``[<bos>, chars..., <eos>]`` rows; with ``world_size`` > 1 this rank scores its share only.

    Rows are sorted by length and grouped up to ``max_tokens`` padded ids per forward pass. The model
    is put in eval mode and then back into the mode it was in.
    """
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))[rank::world_size]
    nll, tokens = 0.0, 0
    start = 0
    while start < len(order):
        # Rows are sorted, so the last row of a group is its longest: grow while the padded size fits.
        end = start + 1
        while end < len(order) and (end + 1 - start) * len(sequences[order[end]]) <= max_tokens:
            end += 1
        ids = pad_rows([sequences[i] for i in order[start:end]]).to(device)
        logits, _ = model(ids[:, :-1])
        nll += float(masked_nll(logits, ids[:, 1:]))
        tokens += int((ids[:, 1:] != PAD_ID).sum())
        start = end
    model.train(was_training)
    return Score(nll, tokens)
