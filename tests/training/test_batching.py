"""training.batching: whole quotes with begin and end, length buckets, padding masked, carried chunks."""

import random

import pytest
import torch

from model.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.helpers import make_tiny_model
from training.batching import QuoteBatcher, detach, encode_quotes, pad_rows
from training.scoring import masked_nll


@pytest.fixture
def sequences(sample_quotes, sample_vocab):
    return encode_quotes(sample_quotes, sample_vocab)


def test_each_quote_is_begin_quote_end(sample_vocab):
    [row] = encode_quotes(["Hey."], sample_vocab)
    assert row[0] == BOS_ID and row[-1] == EOS_ID
    assert sample_vocab.decode(row) == "Hey."


def test_an_epoch_holds_every_quote_once(sequences):
    batcher = QuoteBatcher(sequences, batch_size=16)
    seen = []
    for batch in batcher.epoch(seed=3):
        for row in batch.ids.tolist():
            seen.append(tuple(i for i in row if i != PAD_ID))
    assert sorted(seen) == sorted(tuple(s) for s in sequences)
    assert len(list(batcher.epoch(3))) == len(batcher)


def test_batches_group_similar_lengths(sequences):
    """Far less padding than batches of quotes drawn at random."""
    batcher = QuoteBatcher(sequences, batch_size=16)
    padded = sum(batch.ids.numel() for batch in batcher.epoch(0))
    rng = random.Random(0)
    shuffled = rng.sample(sequences, len(sequences))
    random_padded = sum(pad_rows(shuffled[i : i + 16]).numel() for i in range(0, len(shuffled), 16))
    real = sum(len(s) for s in sequences)
    assert (padded - real) < 0.25 * (random_padded - real)


def test_epochs_are_shuffled_but_reproducible(sequences):
    batcher = QuoteBatcher(sequences, batch_size=16)
    first = [b.ids.tolist() for b in batcher.epoch(1)]
    assert first == [b.ids.tolist() for b in batcher.epoch(1)]
    assert first != [b.ids.tolist() for b in batcher.epoch(2)]


def test_chunks_cover_the_quote_with_targets_shifted_by_one(sequences):
    batch = next(QuoteBatcher(sequences, batch_size=4, chunk_len=7).epoch(0))
    chunks = list(batch.chunks(7))
    inputs = torch.cat([c.inputs for c in chunks], dim=1)
    targets = torch.cat([c.targets for c in chunks], dim=1)
    assert torch.equal(inputs, batch.ids[:, :-1]) and torch.equal(targets, batch.ids[:, 1:])
    assert all(c.inputs.shape[1] == 7 for c in chunks[:-1]) and chunks[-1].inputs.shape[1] <= 7
    assert sum(c.tokens for c in chunks) == batch.tokens == int((batch.ids[:, 1:] != PAD_ID).sum())


def test_carried_chunks_compute_exactly_the_whole_quote(sequences, sample_vocab):
    """In eval mode, chunk-by-chunk with the carried state gives the logits of one pass over the quote."""
    model = make_tiny_model(sample_vocab).eval()
    batch = next(QuoteBatcher(sequences, batch_size=3, chunk_len=5).epoch(0))
    whole, _ = model(batch.ids[:, :-1])
    state, parts = None, []
    for chunk in batch.chunks(5):
        logits, state = model(chunk.inputs, state)
        state = detach(state)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-5, rtol=1e-5)


def test_padding_does_not_count_in_the_loss():
    logits = torch.randn(2, 4, 10)
    targets = torch.tensor([[5, 6, 7, EOS_ID], [5, EOS_ID, PAD_ID, PAD_ID]])
    changed = logits.clone()
    changed[1, 2:] = torch.randn(2, 10) * 100  # the padded positions only
    assert torch.equal(masked_nll(logits, targets), masked_nll(changed, targets))
    assert not torch.equal(masked_nll(logits, targets), masked_nll(logits * 2, targets))


def test_ranks_split_rows_of_the_same_global_batches(sequences):
    world = [QuoteBatcher(sequences, batch_size=8, chunk_len=16, rank=r, world_size=2) for r in range(2)]
    single = QuoteBatcher(sequences, batch_size=16, chunk_len=16)
    for b0, b1, whole in zip(world[0].epoch(5), world[1].epoch(5), single.epoch(5), strict=True):
        assert b0.ids.shape[1] == b1.ids.shape[1] == whole.ids.shape[1]  # same chunk count on both ranks
        assert b0.global_tokens == b1.global_tokens == whole.global_tokens
        assert b0.tokens + b1.tokens == whole.tokens
        rows = sorted(b0.ids.tolist() + b1.ids.tolist())
        assert rows == sorted(whole.ids.tolist())


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        QuoteBatcher([[1, 5, 2]], batch_size=0)
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        QuoteBatcher([[1, 5, 2]], batch_size=1, rank=2, world_size=2)
    with pytest.raises(ValueError, match="1 quotes cannot feed 2 processes"):
        QuoteBatcher([[1, 5, 2]], batch_size=1, world_size=2)
