"""Turning quotes into training batches: whole quotes, grouped by length, cut into carried chunks.

    batcher = QuoteBatcher(encode_quotes(train, vocab), batch_size=64)
    for batch in batcher.epoch(seed=0):
        state = None
        for chunk in batch.chunks(chunk_len=256):
            logits, state = model(chunk.inputs, state)          # [B, T] -> [B, T, vocab]
            loss = masked_loss(logits, chunk.targets)          # padding does not count
            state = detach(state)                               # carried, but no gradient across chunks

Each row of a batch is one quote: inputs are ``<bos> + quote``, targets are ``quote + <eos>``, which is
exactly what generation sees. Quotes of similar length share a batch, so little is padding; padding
targets are ``PAD_ID`` and masked out of the loss. A quote longer than the chunk is cut into consecutive
chunks, and the LSTM state after one chunk starts the next (truncated backpropagation through time).
Why whole quotes rather than random windows, and what it costs in a short run: docs/design-notes.md.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab


def encode_quotes(quotes: Sequence[str], vocab: Vocab) -> list[list[int]]:
    """Each quote as ids ``[<bos>, chars..., <eos>]``."""
    return [[BOS_ID, *vocab.encode(quote), EOS_ID] for quote in quotes]


@dataclass
class Chunk:
    """``inputs`` and ``targets`` [batch, time]; ``tokens`` = the non-padding targets in the whole batch
    over all ranks' rows of this chunk (so a loss summed here and divided by it averages correctly)."""

    inputs: Tensor
    targets: Tensor
    tokens: int


@dataclass
class Batch:
    """Rows of ``[<bos>, chars..., <eos>]`` padded to one length, [batch, length]."""

    ids: Tensor
    global_tokens: list[int]  # per chunk position: real targets across every rank's rows

    @property
    def tokens(self) -> int:
        """Characters this rank's rows predict (``<eos>`` counts, ``<bos>`` does not)."""
        return int((self.ids[:, 1:] != PAD_ID).sum())

    def chunks(self, chunk_len: int, device: torch.device | str = "cpu") -> Iterator[Chunk]:
        """Consecutive ``chunk_len`` slices; the last one may be shorter."""
        inputs, targets = self.ids[:, :-1], self.ids[:, 1:]
        for number, start in enumerate(range(0, inputs.shape[1], chunk_len)):
            yield Chunk(
                inputs[:, start : start + chunk_len].to(device),
                targets[:, start : start + chunk_len].to(device),
                self.global_tokens[number],
            )


def pad_rows(rows: Sequence[Sequence[int]], length: int | None = None) -> Tensor:
    """Rows of ids padded with ``PAD_ID`` to ``length`` (default: the longest row), [batch, length]."""
    length = length if length is not None else max(len(row) for row in rows)
    out = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


class QuoteBatcher:
    """Length-bucketed batches of whole quotes, reshuffled every epoch.

    With ``world_size`` > 1 (distributed training) every rank builds the same global batches from the
    same seed and keeps rows ``rank::world_size`` of each, padded to the global batch's length, so all
    ranks take the same number of chunk steps (DistributedDataParallel needs that) and each chunk's
    loss can be divided by the global count of real targets.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        batch_size: int,
        chunk_len: int = 256,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1 or chunk_len < 1:
            raise ValueError("batch_size and chunk_len must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        usable = [list(seq) for seq in sequences if len(seq) >= 2]
        if len(usable) < world_size:
            raise ValueError(f"{len(usable)} quotes cannot feed {world_size} processes")
        self.sequences = usable
        self.batch_size, self.chunk_len = batch_size, chunk_len
        self.rank, self.world_size = rank, world_size

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.sequences) // self.global_batch)

    def epoch(self, seed: int) -> Iterator[Batch]:
        """One pass over every quote in batches of similar length, in a seeded random order."""
        rng = random.Random(seed)
        # Sort by length with a little noise, so batches differ between epochs but stay tight.
        order = sorted(
            range(len(self.sequences)),
            key=lambda i: len(self.sequences[i]) * (1.0 + 0.1 * rng.random()),
        )
        groups = [order[i : i + self.global_batch] for i in range(0, len(order), self.global_batch)]
        rng.shuffle(groups)
        for group in groups:
            if len(group) < self.world_size:  # a tail too small to give every rank a row
                continue
            rows = [self.sequences[i] for i in group]
            length = max(len(row) for row in rows)
            full = pad_rows(rows, length)
            targets = full[:, 1:] != PAD_ID
            per_chunk = [
                int(targets[:, s : s + self.chunk_len].sum()) for s in range(0, length - 1, self.chunk_len)
            ]
            yield Batch(full[self.rank :: self.world_size], per_chunk)


def detach(state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The carried state without its graph: gradients stop at the chunk boundary, values carry on."""
    return state[0].detach(), state[1].detach()
