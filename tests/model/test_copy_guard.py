"""model/copy_guard.py: sampling never copies 30 characters of a training quote."""

import numpy as np

from model.checkpoint import load_checkpoint, save_checkpoint
from model.copy_guard import WINDOW, CopyGuard
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import Vocab
from model.voice import Voice

QUOTE = "The printer and I have reached an understanding today."


def longest_shared_run(text: str, quote: str) -> int:
    best = 0
    for i in range(len(text)):
        for j in range(i + best + 1, len(text) + 1):
            if text[i:j] not in quote:
                break
            best = j - i
    return best


def test_allowed_forbids_only_the_character_that_completes_a_window():
    vocab = Vocab.from_texts([QUOTE])
    guard = CopyGuard.fit([QUOTE, "something else entirely"], window=10)
    allowed = guard.allowed(vocab.encode("The print"), vocab.chars)  # 9 characters: + "e" copies 10
    assert allowed is not None and not allowed[vocab.char_id("e")]
    assert allowed.sum() == len(vocab) - 1
    assert guard.allowed(vocab.encode("The pr"), vocab.chars) is None  # shorter than a window
    assert guard.allowed(vocab.encode("aaaaaaaaa"), vocab.chars) is None  # nothing to copy


def recite(vocab: Vocab, quote: str, config: SamplingConfig) -> str:
    """Sample through the real decoder from logits that always want the quote's next character."""
    import torch

    decoder = SamplingDecoder(vocab, config, 1)
    text = quote[:5]
    while len(text) < len(quote):
        logits = torch.zeros(1, len(vocab))
        logits[0, vocab.char_id(quote[len(text)])] = 20.0  # wherever the text is, go on as the quote
        history = [1, *vocab.encode(text)]
        text += vocab.chars[int(decoder.pick(logits, [history], [0])[0]) - 4]
    return text


def test_a_sampler_that_would_recite_its_quote_is_made_to_leave_it(sample_vocab):
    quote = "I have been thinking about the weekend all week, honestly."
    vocab = sample_vocab.with_voice(Voice(copy_guard=CopyGuard.fit([quote])))
    guarded = recite(vocab, quote, SamplingConfig(temperature=0))
    assert longest_shared_run(guarded, quote) == WINDOW - 1
    assert recite(vocab, quote, SamplingConfig(temperature=0, no_copy=0)) == quote


def test_the_guard_survives_the_checkpoint(tmp_path, tiny_model, sample_vocab, sample_quotes):
    guard = CopyGuard.fit(sample_quotes)
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, sample_vocab.with_voice(Voice(copy_guard=guard)))
    loaded = load_checkpoint(path).vocab.voice.copy_guard
    assert loaded.window == guard.window and np.array_equal(loaded.hashes, guard.hashes)
    history = sample_vocab.encode(sample_quotes[0][: WINDOW - 1])
    assert np.array_equal(
        loaded.allowed(history, sample_vocab.chars), guard.allowed(history, sample_vocab.chars)
    )


def test_the_batched_check_agrees_with_every_window_looked_up_directly(sample_vocab, sample_quotes):
    """copying() (hash, bitmap prefilter, sorted keys) flags exactly the ids that complete a window."""
    guard = CopyGuard.fit(sample_quotes)
    windows = {q[i : i + WINDOW] for q in sample_quotes for i in range(len(q) - WINDOW + 1)}
    rng = np.random.default_rng(0)
    texts = [q[: rng.integers(WINDOW - 1, len(q))] for q in sample_quotes if len(q) > WINDOW][:40]
    texts += ["".join(rng.permutation(list(t))) for t in texts[:10]]  # and tails found nowhere
    chars = sample_vocab.chars
    hits = guard.copying([sample_vocab.encode(t) for t in texts], chars)
    for text, row in zip(texts, hits, strict=True):
        expected = {c for c in chars if text[-(WINDOW - 1) :] + c in windows}
        assert {chars[i - 4] for i in np.flatnonzero(row)} == expected
    assert hits.sum() >= 30  # most prefixes of training quotes go on as their quote
