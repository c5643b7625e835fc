"""model/phrasing.py: the word trigram model of the character's quotes and its fusion into sampling."""

import math

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.fusion import fuse_phrasing
from model.generate import Generator
from model.phrasing import START, UNKNOWN, Phrasing
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import Vocab
from model.voice import Lexicon, Voice, letter_runs

QUOTES = ["I like tea. I like cake.", "You like tea, then.", "Then they left."]
ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!'"


@pytest.fixture
def phrasing() -> Phrasing:
    lexicon = Lexicon([*QUOTES, "the tent lime"])
    return Phrasing.fit(QUOTES, lexicon)


def total(found: tuple[dict[str, float], float]) -> float:
    letters, end = found
    return sum(math.exp(x) for x in letters.values()) + math.exp(end)


def test_next_letters_follow_the_quotes_in_context(phrasing):
    i, like = phrasing.word_id("i"), phrasing.word_id("like")
    letters, _ = phrasing.next_letters((START, i), "")
    assert max(letters, key=letters.get) == "l"  # "I like", twice
    letters, end = phrasing.next_letters((i, like), "t")
    assert max(letters, key=letters.get) == "e"  # "like tea" over "tent" (lexicon only)
    assert end == -math.inf  # "t" is no word
    assert total(phrasing.next_letters((i, like), "te")) == pytest.approx(1.0)
    assert total(phrasing.next_letters((i, like), "")) == pytest.approx(1.0)  # between words: no end


def test_a_word_only_the_lexicon_knows_stays_possible(phrasing):
    letters, _ = phrasing.next_letters((START, START), "")
    assert "l" in letters and math.isfinite(letters["l"])  # "lime" and "like" start with l
    _, end = phrasing.next_letters((START, START), "lime")
    assert end == 0.0  # the only word with that prefix: it must end here


def test_context_starts_afresh_after_a_sentence_end(phrasing):
    vocab = Vocab.from_texts([ALPHABET])
    chars = vocab.chars
    like = phrasing.word_id("like")
    history = vocab.encode("I like tea. You li")
    assert phrasing.context_of(history, chars, 2) == (START, phrasing.word_id("you"))
    history = vocab.encode("You like tea")
    assert phrasing.context_of(history, chars, 3) == (phrasing.word_id("you"), like)
    assert phrasing.context_of(vocab.encode("Zebra tea"), chars, 3)[1] == UNKNOWN


def test_fusion_moves_letters_toward_the_quotes_and_keeps_their_share_between_words(phrasing):
    vocab = Vocab.from_texts([ALPHABET])
    voice = Voice(phrasing.lexicon, phrasing=phrasing)
    history = vocab.encode("I ")
    logits = torch.zeros(1, len(vocab))
    fused = fuse_phrasing(logits, voice, [history], vocab.chars, [1.0])
    letters = [vocab.char_id(c) for c in ALPHABET if c.isalpha()]
    share = torch.softmax(logits, -1)[0, letters].sum()
    assert torch.softmax(fused, -1)[0, letters].sum() == pytest.approx(float(share), rel=1e-5)
    assert fused[0, vocab.char_id("l")] > fused[0, vocab.char_id("t")] > -math.inf
    assert fused[0, vocab.char_id("z")] == -math.inf  # no word starts with z
    assert torch.equal(fuse_phrasing(logits, voice, [history], vocab.chars, [0.0]), logits)
    in_word = fuse_phrasing(logits, voice, [vocab.encode("I like t")], vocab.chars, [1.0])
    assert in_word[0, vocab.char_id("e")] > in_word[0, vocab.char_id("a")]  # tea, not... no "ta" word
    assert in_word[0, vocab.char_id(" ")] == -math.inf  # "t" is not a word


def test_phrasing_survives_the_checkpoint(tmp_path, tiny_model, sample_vocab, sample_quotes):
    lexicon = Lexicon(sample_quotes)
    phrasing = Phrasing.fit(sample_quotes, lexicon)
    path = save_checkpoint(
        tmp_path / "m.pt", tiny_model, sample_vocab.with_voice(Voice(lexicon, phrasing=phrasing))
    )
    loaded = load_checkpoint(path).vocab.voice.phrasing
    context = (START, phrasing.word_id(letter_runs(sample_quotes[0])[0]))
    assert loaded.next_letters(context, "") == phrasing.next_letters(context, "")
    assert len(loaded.trigram) == len(phrasing.trigram) > 0


def corpus_bigram_share(texts: list[str], quotes: list[str]) -> float:
    seen = {pair for q in quotes for pair in zip(letter_runs(q), letter_runs(q)[1:], strict=False)}
    pairs = [pair for t in texts for pair in zip(letter_runs(t), letter_runs(t)[1:], strict=False)]
    return sum(pair in seen for pair in pairs) / max(1, len(pairs))


def test_sampling_with_phrasing_writes_more_of_the_quotes_word_pairs(tiny_model, sample_vocab, sample_quotes):
    lexicon = Lexicon(sample_quotes)
    vocab = sample_vocab.with_voice(Voice(lexicon, phrasing=Phrasing.fit(sample_quotes, lexicon)))
    generator = Generator(tiny_model, vocab)  # untrained: its word pairs are chance
    shares = {}
    for weight in (0.0, 2.0):
        done = generator.complete([""] * 16, 120, SamplingDecoder(vocab, SamplingConfig(phrasing=weight), 5))
        shares[weight] = corpus_bigram_share([d.text for d in done], sample_quotes)
    assert shares[2.0] > 0.5 > shares[0.0]


def test_no_capital_after_a_small_letter_inside_a_word(phrasing):
    vocab = Vocab.from_texts([ALPHABET])
    voice = Voice(phrasing.lexicon, phrasing=phrasing)
    logits = torch.zeros(2, len(vocab))
    histories = [vocab.encode("I li"), vocab.encode("I LI")]
    fused = fuse_phrasing(logits, voice, histories, vocab.chars, [1.0, 1.0])
    assert fused[0, vocab.char_id("K")] == -math.inf and math.isfinite(fused[0, vocab.char_id("k")])
    assert math.isfinite(fused[1, vocab.char_id("K")])  # an all-capitals word goes on in capitals


def test_the_score_counts_where_sentences_end(phrasing):
    assert phrasing.score("I like tea.") > phrasing.score("I like.")  # "like." ends none of their sentences
    assert phrasing.score("I like tea.") > phrasing.score("Tea like I.")


def test_contexts_that_back_off_alike_share_one_answer(phrasing):
    i, like, then = (phrasing.word_id(w) for w in ("i", "like", "then"))
    assert phrasing.known((i, like)) == (i, like)  # "I like" was seen
    assert phrasing.known((then, like)) == (UNKNOWN, like)  # "then like" was not; "like ..." was
    assert phrasing.known((like, phrasing.word_id("tent"))) == (UNKNOWN, UNKNOWN)  # a lexicon-only word
    assert phrasing.next_letters((then, like), "t") == phrasing.next_letters((UNKNOWN, like), "t")
    uncached = Phrasing(phrasing.lexicon, phrasing.unigram, phrasing.bigram, phrasing.trigram)
    assert uncached._mass(then, like, *uncached._ranges_of("t")[1:]).tolist() == pytest.approx(
        uncached._mass(UNKNOWN, like, *uncached._ranges_of("t")[1:]).tolist()
    )


def test_cached_contexts_match_a_fresh_read_of_every_prefix(phrasing):
    """context_of caches by the text it reads: every position of these texts, read in an order that
    reuses entries, gives what a fresh model (nothing cached) reads there."""
    vocab, chars = Vocab.from_texts([ALPHABET]), Vocab.from_texts([ALPHABET]).chars
    texts = ["I like tea. You like cake", "then I like tea", "You like tea, then they left", "cake like tea"]
    spots = [vocab.encode(t)[:n] for t in texts for n in range(len(t) + 1)]
    for part in spots + spots[::-1]:
        fresh = Phrasing(phrasing.lexicon, phrasing.unigram, phrasing.bigram, phrasing.trigram)
        for prefix_len in {0, min(2, len(part))}:
            assert phrasing.context_of(part, chars, prefix_len) == fresh.context_of(part, chars, prefix_len)
    i, you, like = (phrasing.word_id(w) for w in ("i", "you", "like"))
    assert phrasing.context_of(vocab.encode("I like tea"), chars, 3) == (i, like)
    assert phrasing.context_of(vocab.encode("You like tea"), chars, 3) == (you, like)  # same last 8
