"""The generator: carried-state stepping, batching, stop reasons, and the eval-mode equivalence."""

import pytest
import torch

from model.generate import STOP_END, STOP_LENGTH, STOP_LOOP, Generator, GreedyDecoder, TemperatureDecoder
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import BOS_ID, EOS_ID, UNK_ID, UnknownCharactersError
from tests.helpers import make_tiny_model


class RecordingDecoder:
    """Greedy, but keeps the logits and histories it was shown at every step."""

    def __init__(self):
        self.steps = []

    def pick(self, logits, histories, rows):
        self.steps.append((logits.clone(), [list(h) for h in histories], list(rows)))
        masked = logits.clone()
        masked[:, EOS_ID] = float("-inf")  # keep going, so every row reaches the length cap
        return masked.argmax(dim=-1)

    def loop_trim(self, history):
        return None


@pytest.mark.parametrize(
    "seeds", [["Hey,"], ["I", "The coffee", "Are we back"], ["a", "b", "c", "de", "Monday "]]
)
@pytest.mark.parametrize("max_chars", [12, 40])
def test_eval_mode_carried_state_equals_rerun_from_zero(sample_vocab, seeds, max_chars):
    model = make_tiny_model(sample_vocab, dropout=0.5)
    decoder = RecordingDecoder()
    Generator(model, sample_vocab).complete(seeds, max_chars=max_chars, decoder=decoder)
    assert not model.training
    checked = 0
    with torch.no_grad():
        for logits, histories, _rows in decoder.steps:
            for i, history in enumerate(histories):
                full, _ = model(torch.tensor([[BOS_ID, *history]]))
                expected = full[0, -1]
                keep = [j for j in range(len(sample_vocab)) if j not in (0, BOS_ID, UNK_ID)]
                torch.testing.assert_close(logits[i, keep], expected[keep], rtol=0, atol=1e-5)
                checked += 1
    assert checked >= len(seeds) * (max_chars - max(len(s) for s in seeds))


def test_train_mode_carried_state_differs_from_rerun(sample_vocab):
    """Dropout draws a new mask on every pass, so stepping and re-running disagree in train mode."""
    model = make_tiny_model(sample_vocab, dropout=0.5).train()
    ids = torch.tensor([[BOS_ID, *sample_vocab.encode("Hey, the coffee")]])
    torch.manual_seed(0)
    full, _ = model(ids)
    state = None
    stepped = []
    for t in range(ids.shape[1]):
        logits, state = model(ids[:, t : t + 1], state)
        stepped.append(logits[0, 0])
    difference = (torch.stack(stepped) - full[0]).abs().max().item()
    assert difference > 1e-3


def test_rows_stop_for_their_own_reasons(sample_vocab):
    model = make_tiny_model(sample_vocab)
    gen = Generator(model, sample_vocab)

    class EndAfter:
        """End each row after as many characters as its row number + 2."""

        def pick(self, logits, histories, rows):
            out = []
            for history, row in zip(histories, rows, strict=True):
                generated = len(history) - len(seeds[row])
                out.append(EOS_ID if generated >= row + 2 else sample_vocab.char_id("a"))
            return torch.tensor(out)

        def loop_trim(self, history):
            return None

    # Row 0 and row 2 would end after 2 and 4 letters, but the cap of 5 characters comes first.
    seeds = ["Hey", "I", "x"]
    done = gen.complete(seeds, max_chars=5, decoder=EndAfter())
    assert [d.text for d in done] == ["Heyaa", "Iaaa", "xaaaa"]
    assert [d.stopped for d in done] == [STOP_LENGTH, STOP_END, STOP_LENGTH]
    assert len(done[1].logprobs) == 4  # three letters and the end-of-quote
    assert len(done[0].logprobs) == 2  # two letters, then the cap
    assert all(lp <= 0 for d in done for lp in d.logprobs)


def test_loop_guard_stops_and_trims(sample_vocab):
    class LoopForever:
        def pick(self, logits, histories, rows):
            return torch.full((logits.shape[0],), sample_vocab.char_id("o"))

        def loop_trim(self, history):
            return 3 if history[-4:] == [sample_vocab.char_id("o")] * 4 else None

    [done] = Generator(make_tiny_model(sample_vocab), sample_vocab).complete(["Go"], 100, LoopForever())
    assert done.stopped == STOP_LOOP
    assert done.text == "Go"  # "Goooo" triggered the guard, which cut the last three


def test_seed_at_or_over_the_cap_is_returned_unchanged(sample_vocab):
    [done] = Generator(make_tiny_model(sample_vocab), sample_vocab).complete(["Hello"], max_chars=5)
    assert done.text == "Hello" and done.stopped == STOP_LENGTH and done.logprobs == []


def test_empty_seed_writes_a_whole_quote(sample_vocab):
    [done] = Generator(make_tiny_model(sample_vocab), sample_vocab).complete([""], max_chars=20)
    assert done.seed == "" and len(done.text) >= 1


def test_unknown_seed_characters_raise(sample_vocab):
    with pytest.raises(UnknownCharactersError):
        Generator(make_tiny_model(sample_vocab), sample_vocab).complete(["\U0001f600"])


def test_temperature_decoder_is_reproducible_with_a_seed_and_varies_without(sample_vocab):
    gen = Generator(make_tiny_model(sample_vocab), sample_vocab)
    first = [d.text for d in gen.complete(["Hey"] * 4, 40, TemperatureDecoder(1.0, seed=7))]
    again = [d.text for d in gen.complete(["Hey"] * 4, 40, TemperatureDecoder(1.0, seed=7))]
    assert first == again
    unseeded = {d.text for _ in range(3) for d in gen.complete(["Hey"] * 4, 40, TemperatureDecoder(1.0))}
    assert len(unseeded) > 1


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_decoder_refuses_bad_temperatures(bad):
    with pytest.raises(ValueError, match="temperature"):
        TemperatureDecoder(bad)


def test_greedy_is_deterministic(sample_vocab):
    gen = Generator(make_tiny_model(sample_vocab), sample_vocab)
    assert (
        gen.complete(["The"], 30, GreedyDecoder())[0].text
        == gen.complete(["The"], 30, GreedyDecoder())[0].text
    )


# --- rows joining a running batch ------------------------------------------------------------------------


def test_rows_added_to_a_running_batch_match_a_rerun_from_zero(sample_vocab):
    """Newcomers primed and put beside running rows: every row's logits still equal a full re-run."""
    model = make_tiny_model(sample_vocab, dropout=0.5)
    decoder = RecordingDecoder()
    batch = Generator(model, sample_vocab).batch(decoder)
    assert batch.add(["Hey,", "I"], 30) == [0, 1]
    for _ in range(4):
        assert batch.step() == []
    assert batch.add(["The coffee", "a"], [25, 30]) == [2, 3]
    results = {}
    while batch.busy:
        results.update(batch.step())
    assert sorted(results) == [0, 1, 2, 3]
    assert [len(results[key].text) for key in range(4)] == [30, 30, 25, 30]
    assert decoder.steps[4][2] == [0, 1, 2, 3]  # the step after the join saw all four rows
    with torch.no_grad():
        for logits, histories, _rows in decoder.steps:
            for i, history in enumerate(histories):
                full, _ = model(torch.tensor([[BOS_ID, *history]]))
                keep = [j for j in range(len(sample_vocab)) if j not in (0, BOS_ID, UNK_ID)]
                torch.testing.assert_close(logits[i, keep], full[0, -1, keep], rtol=0, atol=1e-5)


def test_a_sampled_row_joining_late_writes_what_it_writes_alone(sample_vocab):
    """The sampling chain draws by row seed and position, so joining mid-batch changes nothing."""
    model = make_tiny_model(sample_vocab)
    config = SamplingConfig(temperature=1.0)
    [alone] = Generator(model, sample_vocab).complete(
        ["The"], 60, SamplingDecoder(sample_vocab, config, seeds=[99])
    )
    batch = Generator(model, sample_vocab).batch(SamplingDecoder(sample_vocab, config, seeds=[1, 2, 99]))
    batch.add(["Me", "So"], 80)
    finished = dict(batch.step() + batch.step() + batch.step())
    batch.add(["The"], 60)
    while batch.busy:
        finished.update(batch.step())
    assert finished[2].text == alone.text and finished[2].stopped == alone.stopped
    assert finished[2].logprobs == pytest.approx(alone.logprobs, abs=1e-5)


def test_a_refused_add_leaves_the_running_rows_alone(sample_vocab):
    model = make_tiny_model(sample_vocab)
    [alone] = Generator(model, sample_vocab).complete(["Hey"], 30)
    batch = Generator(model, sample_vocab).batch()
    batch.add(["Hey"], 30)
    batch.step()
    with pytest.raises(ValueError, match="max_chars"):
        batch.add(["So"], 0)
    with pytest.raises(UnknownCharactersError):
        batch.add(["So \u2603"], 30)
    with pytest.raises(ValueError, match="2 seeds but 1"):
        batch.add(["a", "b"], [5])
    finished = {}
    while batch.busy:
        finished.update(batch.step())
    assert list(finished) == [0] and finished[0].text == alone.text
    assert len(batch) == 0 and batch.add(["Hey"], 3) == [1]  # keys go on counting
