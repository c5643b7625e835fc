"""model/voice.py and its use in sampling: the lexicon, the length calibration, the checkpoint round trip."""

import pytest

from model.checkpoint import load_checkpoint, save_checkpoint
from model.generate import STOP_END, Generator
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import EOS_ID, Vocab
from model.voice import (
    LengthCalibration,
    Lexicon,
    Voice,
    letter_runs,
    quote_endings,
    word_in_progress,
    words_of,
)

WORDS = ["the", "then", "they", "cat", "Pat", "don't"]


def test_letter_runs_split_on_everything_but_letters():
    assert letter_runs("Don't stop, Pat-2go!") == ["don", "t", "stop", "pat", "go"]


def test_lexicon_follow_gives_next_letters_and_whether_a_word_ends():
    lexicon = Lexicon(WORDS)
    assert lexicon.follow("the") == ("ny", True)
    assert lexicon.follow("th") == ("e", False)
    assert lexicon.follow("pa") == ("t", False)  # lower-cased on the way in
    assert lexicon.follow("x") is None
    assert "don't" in lexicon and "don" not in lexicon and "t" not in lexicon  # a contraction is one word
    assert lexicon.apostrophes and not Lexicon(["the", "cat"]).apostrophes


def test_word_mask_allows_only_lexicon_continuations():
    vocab = Vocab.from_texts(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!'"])
    voice = Voice(Lexicon(WORDS))
    mask = voice.word_mask("th", vocab.chars)
    allowed = {vocab.chars[i - 4] for i in range(4, len(vocab)) if mask[i]}
    assert allowed == {"e", "E"}  # neither a space nor end-of-quote: "th" is not a word
    assert not mask[EOS_ID]
    mask = voice.word_mask("the", vocab.chars)
    assert mask[EOS_ID] and mask[vocab.char_id(" ")] and mask[vocab.char_id("n")]
    assert not mask[vocab.char_id("x")]
    between = voice.word_mask("", vocab.chars)  # between words: a letter some word starts with, or no letter
    assert between[vocab.char_id("t")] and between[vocab.char_id("P")] and between[vocab.char_id(".")]
    assert not between[vocab.char_id("x")]
    assert voice.word_mask("zzz", vocab.chars) is None  # a seed's unknown word is left alone


def test_one_voice_on_two_vocabularies_gives_each_its_own_masks():
    voice = Voice(Lexicon(WORDS))
    small, big = Vocab.from_texts(["the "]), Vocab.from_texts(["a the "])
    assert voice.word_mask("th", small.chars)[small.char_id("e")]
    mask = voice.word_mask("th", big.chars)
    assert len(mask) == len(big) and mask[big.char_id("e")] and not mask[big.char_id("a")]


def test_word_in_progress_reads_the_letters_at_the_end(sample_vocab):
    assert word_in_progress(sample_vocab.encode("Hey, the Cof"), sample_vocab.chars) == "cof"
    assert word_in_progress(sample_vocab.encode("Hey, "), sample_vocab.chars) == ""


def test_length_calibration_bins():
    calibration = LengthCalibration((0, 10, 50), (-1.0, 0.0, 2.0))
    assert [calibration.at(n) for n in (0, 9, 10, 49, 50, 999)] == [-1.0, -1.0, 0.0, 0.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        LengthCalibration((5, 10), (0.0, 0.0))


def test_a_lexicon_constrained_row_never_writes_a_word_outside_the_lexicon(
    tiny_model, sample_vocab, sample_quotes
):
    lexicon = Lexicon(sample_quotes[:40])
    vocab = sample_vocab.with_voice(Voice(lexicon))
    generator = Generator(tiny_model, vocab)  # untrained: left alone it writes letter soup
    done = generator.complete([""] * 24, 120, SamplingDecoder(vocab, SamplingConfig(), 3))
    words = []
    for d in done:
        row = words_of(d.text)
        unfinished = d.stopped != STOP_END and d.text[-1:].isalpha()  # cut at the cap inside a word
        words += row[:-1] if unfinished else row
    assert len(words) > 50
    assert [w for w in words if w not in lexicon and not possessive(w, lexicon)] == []
    unconstrained = generator.complete([""] * 24, 120, SamplingDecoder(vocab, SamplingConfig(lexicon=0), 3))
    assert any(w not in lexicon for d in unconstrained for w in words_of(d.text))


def possessive(word: str, lexicon: Lexicon) -> bool:
    """``word`` is a lexicon word with the possessive ``'s`` (the voice allows those)."""
    return word.endswith("'s") and word[:-2] in lexicon and len(word) > 4 and not word[:-2].endswith("s")


def test_min_len_forbids_an_early_end(tiny_model, sample_vocab):
    generator = Generator(tiny_model, sample_vocab)
    decoder = SamplingDecoder(sample_vocab, SamplingConfig(min_len=30), 1)
    done = generator.complete([""] * 16, 200, decoder)
    assert all(len(d.text) >= 30 for d in done)


def test_the_calibration_bias_reaches_the_end_of_quote_logit(tiny_model, sample_vocab):
    import torch

    voice = Voice(None, LengthCalibration((0, 5), (-50.0, 50.0)))
    vocab = sample_vocab.with_voice(voice)
    decoder = SamplingDecoder(vocab, SamplingConfig(min_p=0.0), 1)
    logits = torch.zeros(2, len(vocab))
    out = decoder.process(logits, [[5, 6], [5] * 8], [0, 1])
    assert out[0, EOS_ID] < -10 and out[1, EOS_ID] > 10
    off = SamplingDecoder(vocab, SamplingConfig(min_p=0.0, length_calibration=0), 1)
    assert off.process(logits, [[5, 6], [5] * 8], [0, 1])[1, EOS_ID] == 0


def test_the_new_knobs_are_validated():
    for bad in ({"lexicon": 2}, {"length_calibration": -1.0}, {"min_len": -3}, {"lexicon": True}):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)


def test_a_checkpoint_carries_its_voice(tmp_path, tiny_model, sample_vocab):
    voice = Voice(Lexicon(WORDS), LengthCalibration((0, 20), (-0.5, 1.5)), {"fitted": "test"})
    path = save_checkpoint(tmp_path / "v.pt", tiny_model, sample_vocab.with_voice(voice))
    loaded = load_checkpoint(path)
    assert loaded.vocab == sample_vocab  # the voice never changes an id
    assert loaded.vocab.voice.lexicon.words == Lexicon(WORDS).words
    assert loaded.vocab.voice.calibration == voice.calibration
    assert loaded.vocab.voice.info == {"fitted": "test"}
    plain = load_checkpoint(save_checkpoint(tmp_path / "p.pt", tiny_model, sample_vocab))
    assert plain.vocab.voice is None


def test_quote_endings_are_the_characters_most_quotes_end_with():
    quotes = ["Hey." for _ in range(40)] + ["What?" for _ in range(8)] + ["Oh!", "so,"]
    assert quote_endings(quotes) == ".?"  # "!" and "," end one quote each
    assert quote_endings([f"word {c}" for c in "abcdefghij"]) == ""  # no few characters end most of them


def test_with_the_ending_rule_a_quote_ends_only_after_a_quote_ending(tiny_model, sample_vocab):
    vocab = sample_vocab.with_voice(Voice(quote_ends=".?"))
    generator = Generator(tiny_model, vocab)  # untrained: it ends its quotes anywhere
    done = generator.complete([""] * 32, 200, SamplingDecoder(vocab, SamplingConfig(), 9))
    ended = [d.text for d in done if d.stopped == STOP_END]
    assert ended and all(text[-1:] in (".", "?") for text in ended)
    free = generator.complete([""] * 32, 200, SamplingDecoder(vocab, SamplingConfig(ending=0), 9))
    assert any(d.stopped == STOP_END and d.text[-1:] not in (".", "?") for d in free)


def test_a_due_end_of_quote_bias_also_reaches_the_sentence_ends_that_end_quotes(sample_vocab):
    import torch

    vocab = sample_vocab.with_voice(Voice(None, LengthCalibration((0, 5), (-2.0, 3.0)), quote_ends=".?"))
    logits = torch.zeros(2, len(vocab))
    stop, ask, comma = (vocab.char_id(c) for c in ".?,")
    out = SamplingDecoder(vocab, SamplingConfig(min_p=0.0), 1).process(logits, [[5, 6], [5] * 8], [0, 1])
    assert out[1, stop] == out[1, ask] == 3.0 and out[1, comma] == 0  # due: "." and "?" get the bias
    assert out[0, stop] == 0  # not due (a negative bias): sentences end as the model likes
    off = SamplingDecoder(vocab, SamplingConfig(min_p=0.0, closing=0), 1).process(logits, [[5] * 8], [0])
    assert off[0, stop] == 0
