"""Each processor of the anti-repetition chain on hand-made logits, with exact expected values."""

import math
import random

import numpy as np
import pytest
import torch

from model.processors import (
    DRY_MAX_EXPONENT,
    RepeatTracker,
    block_ngrams,
    dry_penalty,
    find_loop,
    min_p_filter,
    repetition_penalties,
    sample,
    top_k_filter,
    top_p_filter,
    window_counts,
)

INF = float("inf")


def t(*values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def test_repetition_penalties_are_sign_aware_and_per_row():
    logits = t([2.0, -1.0, 0.5, 3.0], [2.0, -1.0, 0.5, 3.0])
    counts = torch.tensor([[1, 2, 0, 0], [1, 2, 0, 0]])
    out = repetition_penalties(logits, counts, t(2.0, 1.0), t(0.5, 0.0), t(0.25, 0.0))
    # Row 0: 2/2 - 0.5 - 0.25; -1*2 - 0.5 - 2*0.25; unseen characters untouched. Row 1: all off.
    assert out.tolist() == [[0.25, -3.0, 0.5, 3.0], [2.0, -1.0, 0.5, 3.0]]


def test_repetition_penalty_leaves_minus_infinity_alone():
    out = repetition_penalties(t([-INF, 1.0]), torch.tensor([[3, 0]]), t(1.5), t(1.0), t(1.0))
    assert out.tolist() == [[-INF, 1.0]]


def test_dry_penalty_grows_from_the_allowed_length_and_caps_its_exponent():
    logits = torch.zeros(2, 5)
    runs = torch.tensor([[0, 2, 3, 5, 100], [0, 2, 3, 5, 100]])
    out = dry_penalty(logits, runs, t(0.8, 0.0), t(2.0, 2.0), t(3.0, 3.0))
    expected = [0.0, 0.0, -0.8, -0.8 * 2**2, -0.8 * 2.0**DRY_MAX_EXPONENT]
    torch.testing.assert_close(out[0], torch.tensor(expected))
    assert out[1].tolist() == [0.0] * 5  # multiplier 0: off
    big = dry_penalty(torch.zeros(1, 1), torch.tensor([[10_000]]), t(10.0), t(8.0), t(1.0))
    assert torch.isfinite(big).all()


def test_ngram_blocking_forbids_runs_of_n_minus_one():
    runs = torch.tensor([[2, 3, 4, 0], [2, 3, 4, 0]])
    out = block_ngrams(torch.ones(2, 4), runs, torch.tensor([4, 0]))
    assert out.tolist() == [[1.0, -INF, -INF, 1.0], [1.0, 1.0, 1.0, 1.0]]


def test_top_k_keeps_the_k_best_per_row_and_zero_is_off():
    logits = t([1.0, 4.0, 2.0, 3.0], [1.0, 4.0, 2.0, 3.0], [5.0, 5.0, 1.0, 0.0])
    out = top_k_filter(logits, torch.tensor([2, 0, 1]))
    assert out.tolist() == [[-INF, 4.0, -INF, 3.0], [1.0, 4.0, 2.0, 3.0], [5.0, 5.0, -INF, -INF]]


def test_top_p_keeps_the_smallest_nucleus():
    probs = [0.5, 0.25, 0.125, 0.125]
    logits = torch.log(torch.tensor([probs[::-1], probs, probs, probs]))
    out = top_p_filter(logits, t(0.6, 0.6, 0.8, 1.0))
    kept = torch.isfinite(out).tolist()
    assert kept == [
        [False, False, True, True],  # the same nucleus, in another order
        [True, True, False, False],  # 0.5 < 0.6, then 0.75 >= 0.6 stops
        [True, True, True, False],  # 0.75 < 0.8 keeps the third
        [True, True, True, True],  # 1 is off
    ]
    assert torch.equal(out[torch.isfinite(out)], logits[torch.isfinite(out)])


def test_min_p_keeps_characters_near_the_best():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]] * 3))
    out = min_p_filter(logits, t(0.6, 0.3, 0.0))
    assert torch.isfinite(out).tolist() == [
        [True, False, False, False],  # p >= 0.3
        [True, True, False, False],  # p >= 0.15
        [True, True, True, True],  # 0 is off
    ]


def test_sample_inverts_the_cdf_and_temperature_zero_is_argmax():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]] * 5))
    ids = sample(logits, torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]), torch.tensor([0.1, 0.6, 0.9, 0.0, 0.99]))
    assert ids.tolist() == [0, 1, 2, 0, 0]


def test_sample_applies_the_temperature():
    # T=1: p = [0.8, 0.2]; T=2: p = [2/3, 1/3]. u = 0.7 falls on different sides.
    logits = torch.tensor([[math.log(4.0), 0.0]] * 2)
    assert sample(logits, torch.tensor([1.0, 2.0]), torch.tensor([0.7, 0.7])).tolist() == [0, 1]


def test_sample_never_draws_a_forbidden_character():
    u = torch.linspace(0, 1, 101, dtype=torch.float64)  # 1 itself is out of range, and still safe
    logits = torch.tensor([[-INF, 0.0, -INF, 1.0, -INF]]).expand(101, 5)
    assert set(sample(logits, torch.ones(101), u).tolist()) == {1, 3}


def test_window_counts_zeroes_exempt_characters_per_row():
    exempt = np.zeros((2, 8), dtype=bool)
    exempt[0, 5] = True
    counts = window_counts([np.array([4, 5, 5, 6, 6]), np.array([6])], 8, exempt)
    assert counts.tolist() == [[0, 0, 0, 0, 1, 0, 2, 0], [0, 0, 0, 0, 0, 0, 1, 0]]


def brute_force_runs(history, min_length):
    """For each character c: the longest L with history[i-L:i] == history[-L:] and history[i] == c."""
    n = len(history)
    best = {}
    for i in range(n):
        length = 0
        while length < i and history[i - 1 - length] == history[n - 1 - length]:
            length += 1
        if length >= min_length:
            best[history[i]] = max(best.get(history[i], 0), length)
    return best


def test_repeat_tracker_on_a_hand_made_history():
    tracker = RepeatTracker()
    tracker.extend([ord(c) for c in "abcabc"])
    chars, lengths = tracker.run_lengths(1)
    assert dict(zip(chars.tolist(), lengths.tolist(), strict=True)) == {ord("a"): 3}


@pytest.mark.parametrize("seed", range(5))
def test_repeat_tracker_matches_brute_force_at_every_step(seed):
    rng = random.Random(seed)
    history = [rng.choice([0, 1, 2]) for _ in range(150)]
    tracker = RepeatTracker()
    for n, char in enumerate(history, start=1):
        tracker.append(char)
        chars, lengths = tracker.run_lengths(2)
        assert dict(zip(chars.tolist(), lengths.tolist(), strict=True)) == brute_force_runs(history[:n], 2)


def ids(text):
    return [ord(c) for c in text]


@pytest.mark.parametrize(
    "text, start, cut",
    [
        ("Hey back to back to back to ", 4, 16),  # keep one "back to "
        ("a" * 12, 0, 8),  # a 1-character period counts as a 4-character unit
        ("ha ha ha ha ", 0, None),  # a 3-character period needs 6-character units: 18 characters
        ("ha ha ha ha ha ha ", 0, 12),
        ("abcdabcdabcd", 12, None),  # the seed repeats itself: nothing generated, nothing cut
        ("abcdabcdabcd", 8, None),  # only one copy generated
        ("abcdabcdabcd", 4, 8),
        ("To be, or not to be, that is the question", 0, None),
    ],
)
def test_find_loop(text, start, cut):
    assert find_loop(ids(text), start) == cut


@pytest.mark.parametrize("seed", range(4))
def test_tail_loop_agrees_with_find_loop_at_every_step(seed):
    rng = random.Random(seed)
    units = ["ab", "abcd", "xyz", "back to ", "a"]
    history = []
    while len(history) < 300:  # random letters mixed with runs of repeated units
        if rng.random() < 0.5:
            history += ids(rng.choice(units) * rng.randint(1, 5))
        else:
            history += [rng.randint(0, 3) for _ in range(rng.randint(1, 8))]
    start = rng.randint(0, 10)
    tracker = RepeatTracker()
    found = 0
    for n, char in enumerate(history, start=1):
        tracker.append(char)
        if n > start:
            expected = find_loop(history[:n], start)
            assert tracker.tail_loop(start) == expected
            found += expected is not None
    assert found > 0


def test_repeat_tracker_longest_is_the_largest_match_after_every_append():
    """``longest`` lets run_lengths and tail_loop stop early; it must never be below a real match."""
    rng = random.Random(7)
    tracker = RepeatTracker()
    for _ in range(300):
        tracker.append(rng.choice([1, 2, 3]) if rng.random() < 0.7 else 1)
        assert tracker.longest == int(tracker.match[: tracker.n].max())
