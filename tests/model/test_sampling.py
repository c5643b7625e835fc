"""The sampling config, the chain's order, per-row independence, seeds, and the loop guard."""

import math
import re

import pytest
import torch

from model.generate import STOP_END, STOP_LENGTH, STOP_LOOP, Generator, GreedyDecoder
from model.sampling import SamplingConfig, SamplingDecoder, derive_seed, row_uniforms
from model.vocab import Vocab
from tests.helpers import looping_model, make_tiny_model

PLAIN = SamplingConfig(temperature=1.0, min_p=0.0, no_repeat_ngram=0, dry_multiplier=0.0, loop_repeats=0)
"""Every processor off: plain sampling at temperature 1."""

LOOP = re.compile(r"(.{4,}?)\1\1", re.DOTALL)


# --- the config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("temperature", float("nan"), "from 0 (greedy) to 5"),
        ("temperature", float("inf"), "from 0 (greedy) to 5"),
        ("temperature", -0.1, "from 0 (greedy) to 5"),
        ("top_p", 0.0, "(0, 1]"),
        ("top_p", 1.5, "(0, 1]"),
        ("top_p", float("nan"), "(0, 1]"),
        ("min_p", 1.0, "[0, 1)"),
        ("min_p", float("-inf"), "[0, 1)"),
        ("top_k", -1, "from 0 (off) to 10000"),
        ("top_k", 2.5, "from 0 (off) to 10000"),
        ("top_k", True, "from 0 (off) to 10000"),
        ("repetition_penalty", 0.5, "from 1 (off) to 10"),
        ("presence_penalty", float("nan"), "from 0 (off) to 10"),
        ("frequency_penalty", 11.0, "from 0 (off) to 10"),
        ("penalty_window", 0, "from 1 to 10000"),
        ("no_repeat_ngram", 1, "0 (off) or an integer from 2 to 1000"),
        ("dry_multiplier", float("inf"), "from 0 (off) to 10"),
        ("dry_base", 0.9, "from 1 to 8"),
        ("dry_allowed_length", 0, "from 1 to 1000"),
        ("loop_repeats", 1, "0 (off) or an integer from 2 to 100"),
        ("temperature", "hot", "from 0 (greedy) to 5"),
        ("closing", -0.5, "from 0 (off) to 2"),
        ("closing", 2.5, "from 0 (off) to 2"),
        ("closing", float("nan"), "from 0 (off) to 2"),
    ],
)
def test_config_refuses_bad_values_naming_the_field_and_range(field, value, allowed):
    with pytest.raises(ValueError) as caught:
        SamplingConfig(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"{field} must be ") and allowed in message


def test_config_accepts_the_edges_and_makes_numbers_floats():
    config = SamplingConfig(temperature=0, top_p=1, min_p=0, no_repeat_ngram=0, loop_repeats=0, dry_base=8)
    assert config.temperature == 0.0 and isinstance(config.temperature, float)
    assert config.with_changes(top_k=40).top_k == 40
    with pytest.raises(ValueError, match="top_k"):
        config.with_changes(top_k=-3)


def test_config_from_dict_refuses_unknown_options():
    assert SamplingConfig.from_dict({"top_p": 0.9}).top_p == 0.9
    with pytest.raises(ValueError, match=r"unknown sampling option.*tmperature.*known:.*temperature"):
        SamplingConfig.from_dict({"tmperature": 0.9})


# --- the chain ----------------------------------------------------------------------------------

VOCAB = Vocab(tuple("abxyz"))
A, B, X, Y, Z = (VOCAB.char_id(c) for c in "abxyz")


def logits_for(values: dict[int, float], rows: int = 1) -> torch.Tensor:
    logits = torch.full((rows, len(VOCAB)), -5.0)
    for char_id, value in values.items():
        logits[:, char_id] = value
    return logits


def test_penalties_come_before_truncation():
    # 'a' is the favourite but was just used; a penalty of 4 drops it below 'b', and top-k 1 keeps 'b'.
    config = SamplingConfig(repetition_penalty=4.0, top_k=1, min_p=0.0, no_repeat_ngram=0, dry_multiplier=0,
                            penalty_exempt="")  # fmt: skip
    out = SamplingDecoder(VOCAB, config).process(logits_for({A: 2.0, B: 1.0}), [[A]], [0])
    assert out[0, B] == 1.0 and torch.isinf(out[0]).sum() == len(VOCAB) - 1


def test_exempt_characters_escape_the_token_penalties():
    config = SamplingConfig(repetition_penalty=4.0, min_p=0.0, no_repeat_ngram=0, dry_multiplier=0,
                            penalty_exempt="a")  # fmt: skip
    out = SamplingDecoder(VOCAB, config).process(logits_for({A: 2.0, B: 1.0}), [[A, B]], [0])
    assert out[0, A] == 2.0 and out[0, B] == 0.25


def test_ngram_blocking_comes_before_truncation():
    # History "xyx": 'y' would repeat the bigram "xy", so it is blocked before top-k picks the best.
    config = SamplingConfig(no_repeat_ngram=2, top_k=1, min_p=0.0, dry_multiplier=0)
    out = SamplingDecoder(VOCAB, config).process(logits_for({Y: 3.0, Z: 1.0}), [[X, Y, X]], [0])
    assert out[0, Z] == 1.0 and out[0, Y] == -math.inf


def test_dry_penalty_in_the_chain_uses_the_repeated_run():
    # History "abxab": choosing 'x' would repeat the run "ab" (L = 2) -> penalty 0.5 * 2 ** (2 - 2).
    config = SamplingConfig(
        dry_multiplier=0.5, dry_base=2.0, dry_allowed_length=2, no_repeat_ngram=0, min_p=0
    )
    out = SamplingDecoder(VOCAB, config).process(logits_for({X: 1.0}), [[A, B, X, A, B]], [0])
    assert out[0, X] == pytest.approx(0.5)
    assert out[0, Z] == -5.0


def test_temperature_comes_after_min_p():
    # p = [0.5, 0.25, 0.125, 0.125]: min-p 0.3 keeps only the first two on the model's own distribution.
    # Had temperature 5 come first, the flattened distribution would let all four through.
    config = SamplingConfig(temperature=5.0, min_p=0.3, no_repeat_ngram=0, dry_multiplier=0)
    logits = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125]))
    full = torch.full((200, len(VOCAB)), -math.inf)
    full[:, [A, B, X, Y]] = logits
    decoder = SamplingDecoder(VOCAB, config, seeds=list(range(200)))
    drawn = decoder.pick(full, [[Z] for _ in range(200)], list(range(200)))
    assert set(drawn.tolist()) == {A, B}


def test_rows_of_a_batch_are_processed_independently():
    configs = [
        SamplingConfig(repetition_penalty=3.0, penalty_exempt="", no_repeat_ngram=0, dry_multiplier=0),
        PLAIN,
        SamplingConfig(no_repeat_ngram=2, top_k=2),
    ]
    histories = [[A, A, B], [X, Y, X], [X, Y, X]]
    logits = torch.randn(3, len(VOCAB), generator=torch.Generator().manual_seed(0))
    together = SamplingDecoder(VOCAB, configs).process(logits, histories, [0, 1, 2])
    for row in range(3):
        alone = SamplingDecoder(VOCAB, configs).process(logits[row : row + 1], [histories[row]], [row])
        assert torch.equal(together[row], alone[0])
    assert torch.equal(together[1], logits[1])  # every processor off: untouched


def test_a_row_gives_the_same_text_whatever_its_batch(sample_vocab):
    gen = Generator(make_tiny_model(sample_vocab), sample_vocab)
    config = SamplingConfig(temperature=1.0)
    [alone] = gen.complete(["Hey"], 60, SamplingDecoder(sample_vocab, config, seeds=[5]))
    batch = gen.complete(["The", "Hey", "I"], 60, SamplingDecoder(sample_vocab, config, seeds=[1, 5, 2]))
    assert batch[1].text == alone.text


def test_a_seed_reproduces_and_no_seed_varies(sample_vocab):
    gen = Generator(make_tiny_model(sample_vocab), sample_vocab)

    def texts(seeds):
        return [d.text for d in gen.complete(["Hey"] * 4, 50, SamplingDecoder(sample_vocab, seeds=seeds))]

    first = texts(7)
    assert texts(7) == first
    assert len(set(first)) > 1  # the rows of one seeded request still differ from each other
    assert texts(8) != first
    assert len({text for _ in range(3) for text in texts(None)}) > 1


def test_row_uniforms_are_uniform_and_keyed_by_seed_and_position():
    draws = row_uniforms([derive_seed(1, i) for i in range(20_000)], [0] * 20_000)
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01 and abs(draws.var() - 1 / 12) < 0.005
    assert row_uniforms([3, 3], [0, 1]).tolist() != row_uniforms([3, 3], [0, 0]).tolist()
    assert row_uniforms([3], [9]).tolist() == row_uniforms([3], [9]).tolist()


# --- the loop guard -----------------------------------------------------------------------------


def test_loop_guard_stops_a_model_forced_into_a_loop_and_trims_it():
    vocab = Vocab(tuple("abcdefgh "))
    gen = Generator(looping_model(vocab), vocab)
    [greedy] = gen.complete(["a"], 40, GreedyDecoder())
    assert greedy.stopped == STOP_LENGTH and greedy.text == "abcd" * 10  # the model really loops
    guard_only = PLAIN.with_changes(temperature=0.0, loop_repeats=3)
    [guarded] = gen.complete(["a"], 40, SamplingDecoder(vocab, guard_only))
    # "abcdabcdabcd" is the first tail with three copies; the two after the first are cut.
    assert guarded.stopped == STOP_LOOP and guarded.text == "abcd"
    for done in gen.complete(["a"] * 8, 60, SamplingDecoder(vocab, SamplingConfig(), seeds=1)):
        assert done.stopped in {STOP_END, STOP_LOOP, STOP_LENGTH}
        assert not LOOP.search(done.text)


def test_loop_guard_never_cuts_into_the_seed():
    vocab = Vocab(tuple("abcdefgh "))
    gen = Generator(looping_model(vocab), vocab)
    config = PLAIN.with_changes(temperature=0.0, loop_repeats=3)
    [done] = gen.complete(["abcdabcdabcd"], 40, SamplingDecoder(vocab, config))
    # The guard waits until the model itself has added two copies, then cuts exactly those.
    assert done.text == "abcdabcdabcd" and done.stopped == STOP_LOOP
    assert len(done.logprobs) == 8
