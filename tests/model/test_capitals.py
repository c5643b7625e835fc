"""model/capitals.py: mid-sentence, only the words the character capitalizes there start with a capital.

The bundled model read verse, whose lines start with a capital, and carried that into Pat's prose ("I did
buy It a success"): 10 of 200 of her quotes had such a word. The rule reads the capitals off the quotes.
"""

import string

from model.capitals import Capitals, mid_sentence_capitals, starts_sentence
from model.checkpoint import load_checkpoint, save_checkpoint
from model.generate import STOP_END, Generator
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import Vocab
from model.voice import Lexicon, Voice

VOCAB = Vocab.from_texts([string.ascii_letters + " .,!?'\""])


def allowed(voice: Voice, text: str, prefix: str) -> set[str]:
    mask = voice.row_mask(VOCAB.encode(text), prefix, VOCAB.chars)
    return set(VOCAB.chars) if mask is None else {VOCAB.chars[i - 4] for i in range(4, len(VOCAB)) if mask[i]}


def test_the_capitals_are_read_where_no_sentence_starts():
    quotes = [
        "Hey, Pat said Monday is fine. The end.",
        'I said "Never" and I\'m done.',
        "Ask Gerald's kettle",
    ]
    assert mid_sentence_capitals(quotes) == ["gerald's", "i'm", "monday", "pat"]  # "I said": a start
    assert starts_sentence("") and starts_sentence("Done. ") and starts_sentence('said "')
    assert not starts_sentence("Hey, ") and not starts_sentence("the ")


def test_mid_sentence_only_the_characters_capitals():
    voice = Voice(
        Lexicon(["pat", "monday", "the", "printer", "i", "it"]), capitals=Capitals(["pat", "monday", "i"])
    )
    assert {"P", "M", "I"} <= allowed(voice, "Hey, ", "") and not {"T", "Q"} & allowed(voice, "Hey, ", "")
    assert {"t", "p", "m"} <= allowed(voice, "Hey, ", "")  # small letters as the lexicon says
    assert "T" in allowed(voice, "Done. ", "") and "T" in allowed(voice, "", "")  # a sentence's start
    assert "T" in allowed(voice, 'He said "', "")  # a quotation's
    assert allowed(voice, "Hey, Pa", "pa") == {"t", "T"}  # a capital word stays one of them
    assert allowed(voice, "Hey, pri", "pri") == {"n", "N"}  # a small word: the lexicon says


def test_sampled_quotes_capitalize_only_the_characters_words(tiny_model, sample_vocab, sample_quotes):
    capitals = Capitals.fit(sample_quotes)
    voice = Voice(Lexicon(sample_quotes), capitals=capitals)
    vocab = sample_vocab.with_voice(voice)
    generator = Generator(tiny_model, vocab)  # untrained: left alone it writes capitals anywhere

    def stray(config: SamplingConfig) -> list[str]:
        done = generator.complete(["Hey, the"] * 24, 100, SamplingDecoder(vocab, config, 7))
        texts = [d.text if d.stopped == STOP_END else d.text.rstrip(string.ascii_letters) for d in done]
        return [
            w for t in texts for w in mid_sentence_capitals([t]) if w not in capitals.lexicon
        ]  # cut words out

    assert stray(SamplingConfig()) == []
    assert stray(SamplingConfig(lexicon=0))  # without the rule they come


def test_a_word_always_capitalized_is_not_written_small():
    capitals = Capitals.fit(["Hey, Pat and I said Monday.", "Monday is here. The end, the start."])
    assert capitals.proper == {"pat", "i", "monday"}  # "the" is written small too
    voice = Voice(Lexicon(["pat", "patio", "i", "if", "the"]), capitals=capitals)
    assert allowed(voice, "Hey, pat", "pat") == {"i", "I"}  # "patio", not "pat"
    assert allowed(voice, "and i", "i") == {"f", "F"}  # "if", not "i"
    assert " " in allowed(voice, "and Pat", "pat") and " " in allowed(voice, "and the", "the")
    names = Voice(
        Lexicon(["clarence", "clarence's", "clarify"]), capitals=Capitals(["clarence"], ["clarence"])
    )
    assert allowed(names, "and clar", "clar") == {"i", "I"}  # never on towards "clarence"
    assert allowed(names, "and Clar", "clar") == {"e", "E"}  # a capital mid-sentence: one of its capitals


def test_capitals_round_trip_through_a_checkpoint(tiny_model, sample_vocab, tmp_path):
    voice = Voice(Lexicon(["pat"]), capitals=Capitals(["pat", "i'm"], ["pat"]))
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, sample_vocab.with_voice(voice))
    loaded = load_checkpoint(path).vocab.voice.capitals
    assert loaded.lexicon.words == ["i'm", "pat"] and loaded.proper == {"pat"}
    older = save_checkpoint(tmp_path / "o.pt", tiny_model, sample_vocab.with_voice(Voice(Lexicon(["pat"]))))
    assert load_checkpoint(older).vocab.voice.capitals is None  # a checkpoint from before: no rule


def test_with_capitals_known_a_possessive_needs_a_name_or_the_lexicon():
    capitals = Capitals.fit(["Ask Gerald first.", "Do Not touch, not now."])
    voice = Voice(Lexicon(["gerald", "much", "not", "world", "world's", "ask"]), capitals=capitals)
    assert "s" in allowed(voice, "Ask Gerald'", "gerald'") and "s" in allowed(voice, "the world'", "world'")
    assert "s" not in allowed(voice, "so much'", "much'") and "s" not in allowed(voice, "Do Not'", "not'")
