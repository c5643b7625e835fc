"""training.scoring: nats and bits per character of whole quotes, from <bos>, in eval mode."""

import math

import pytest
import torch

from tests.helpers import make_tiny_model
from training.batching import encode_quotes
from training.scoring import Score, score_quotes


@pytest.fixture
def sequences(sample_quotes, sample_vocab):
    return encode_quotes(sample_quotes[:40], sample_vocab)


def test_a_model_that_knows_nothing_scores_log_vocab(sample_vocab, sequences):
    model = make_tiny_model(sample_vocab)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    score = score_quotes(model, sequences)
    assert score.nats == pytest.approx(math.log(len(sample_vocab)))
    assert score.bits_per_char == pytest.approx(math.log2(len(sample_vocab)))
    assert score.tokens == sum(len(s) - 1 for s in sequences)  # every character and <eos>, not <bos>


def test_grouping_does_not_change_the_score(sample_vocab, sequences):
    model = make_tiny_model(sample_vocab)
    whole = score_quotes(model, sequences)
    one_by_one = score_quotes(model, sequences, max_tokens=1)
    assert one_by_one.tokens == whole.tokens
    assert one_by_one.nll == pytest.approx(whole.nll, rel=1e-5)


def test_each_quote_is_scored_from_its_own_start(sample_vocab, sequences):
    model = make_tiny_model(sample_vocab)
    total = sum(score_quotes(model, [s]).nll for s in sequences)
    assert score_quotes(model, sequences).nll == pytest.approx(total, rel=1e-5)


def test_scoring_is_in_eval_mode_and_restores_the_mode(sample_vocab, sequences):
    model = make_tiny_model(sample_vocab, dropout=0.5).train()
    first, second = score_quotes(model, sequences), score_quotes(model, sequences)
    assert first.nll == second.nll  # dropout off: deterministic
    assert model.training


def test_ranks_share_the_work(sample_vocab, sequences):
    model = make_tiny_model(sample_vocab)
    parts = [score_quotes(model, sequences, rank=r, world_size=3) for r in range(3)]
    whole = score_quotes(model, sequences)
    assert sum(p.tokens for p in parts) == whole.tokens
    assert sum(p.nll for p in parts) == pytest.approx(whole.nll, rel=1e-5)


def test_empty_score_is_nan():
    assert math.isnan(Score(0.0, 0).nats)
