"""Best of N: the documented score, the choice, reproducibility, and candidates as rows of one batch."""

import math

import pytest

from model.best_of import (
    MISSING_END_PENALTY,
    REPEAT_WEIGHT,
    complete_best_of,
    repeated_ngram_share,
    score_completion,
)
from model.generate import STOP_END, STOP_LENGTH, Completion, Generator
from tests.helpers import make_tiny_model


def test_score_completion_is_mean_logprob_minus_documented_penalties():
    ended = Completion(seed="Hi", text="Hi there", stopped=STOP_END, logprobs=[-1.0, -2.0])
    assert score_completion(ended) == -1.5
    cut = Completion(seed="Hi", text="Hi there", stopped=STOP_LENGTH, logprobs=[-1.0, -2.0])
    assert score_completion(cut) == -1.5 - MISSING_END_PENALTY
    looped = Completion(seed="", text="abcd" * 8, stopped=STOP_END, logprobs=[-0.5] * 33)
    share = repeated_ngram_share("abcd" * 8)  # 17 16-grams, 4 distinct
    assert share == pytest.approx(1 - 4 / 17)
    assert score_completion(looped) == pytest.approx(-0.5 - REPEAT_WEIGHT * share)
    assert score_completion(Completion(seed="x", text="x", stopped=STOP_LENGTH)) == -math.inf


def test_best_of_picks_the_highest_score_and_is_reproducible(sample_vocab):
    gen = Generator(make_tiny_model(sample_vocab), sample_vocab)
    results = complete_best_of(gen, ["Hey", "The"], n=3, rng_seed=11, max_chars=40)
    again = complete_best_of(gen, ["Hey", "The"], n=3, rng_seed=11, max_chars=40)
    assert [r.best.text for r in results] == [r.best.text for r in again]
    for result, seed in zip(results, ["Hey", "The"], strict=True):
        assert len(result.candidates) == 3 and all(c.seed == seed for c in result.candidates)
        assert result.scores == [score_completion(c) for c in result.candidates]
        assert score_completion(result.best) == max(result.scores)
    assert len({c.text for c in results[0].candidates}) > 1


def test_best_of_candidates_are_rows_of_one_batch(sample_vocab):
    calls = []

    class Counting(Generator):
        def complete(self, seeds, max_chars=300, decoder=None):
            calls.append(list(seeds))
            return super().complete(seeds, max_chars, decoder)

    complete_best_of(Counting(make_tiny_model(sample_vocab), sample_vocab), ["Hey", "I"], n=4, max_chars=20)
    assert calls == [["Hey"] * 4 + ["I"] * 4]


@pytest.mark.parametrize("n", [0, 65])
def test_best_of_refuses_a_bad_n(sample_vocab, n):
    with pytest.raises(ValueError, match="best-of n must be an integer from 1 to 64"):
        complete_best_of(Generator(make_tiny_model(sample_vocab), sample_vocab), ["Hey"], n=n)


def test_with_a_word_model_best_of_keeps_the_candidate_whose_words_follow_the_quotes(
    sample_vocab, sample_quotes
):
    from model.phrasing import Phrasing
    from model.voice import Lexicon, Voice

    lexicon = Lexicon(sample_quotes)
    phrasing = Phrasing.fit(sample_quotes, lexicon)
    quote = sample_quotes[0]
    shuffled = " ".join(reversed(quote.rstrip('.?"').split(" "))) + "."
    assert phrasing.score(quote) > phrasing.score(shuffled)  # the same words, out of the quote's order
    vocab = sample_vocab.with_voice(Voice(lexicon, phrasing=phrasing))
    gen = Generator(make_tiny_model(sample_vocab), vocab)
    [result] = complete_best_of(gen, ["The"], n=6, rng_seed=3, max_chars=60)
    assert result.scores == [score_completion(c, phrasing) for c in result.candidates]
    assert result.scores != [score_completion(c) for c in result.candidates]  # words, not characters
    assert score_completion(result.best, phrasing) == max(result.scores)
