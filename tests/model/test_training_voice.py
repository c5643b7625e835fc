"""training/voice.py: the voice fitted after training, saved in the checkpoint; the calibrate command."""

from model.__main__ import main as model_main
from model.checkpoint import load_checkpoint, read_checkpoint
from model.voice import Lexicon, Voice
from tests.conftest import SAMPLE_CORPUS
from training.__main__ import main
from training.voice import build_lexicon, general_words, refit_checkpoint


def test_the_lexicon_holds_corpus_words_parent_words_and_general_words(sample_quotes):
    parent = Voice(Lexicon(["forsooth"]))
    lexicon, info = build_lexicon(sample_quotes, parent)
    assert "coffee" in lexicon and "forsooth" in lexicon and "because" in lexicon
    assert info["general_words"] > 10_000 and info["corpus_words"] < info["general_words"]


def test_the_general_list_leaves_out_abbreviations():
    words = set(general_words())
    assert {"because", "a", "i", "o", "rhythm"} <= words
    assert not {"cpr", "tht", "nd", "b"} & words


def test_refit_saves_lexicon_and_calibration_keeping_the_metadata(tiny_checkpoint, tmp_path, sample_quotes):
    out = tmp_path / "fitted.pt"
    voice = refit_checkpoint(tiny_checkpoint, sample_quotes, samples=16, out=out)
    loaded = load_checkpoint(out)
    assert loaded.vocab.voice.calibration == voice.calibration is not None
    assert "coffee" in loaded.vocab.voice.lexicon
    phrasing, guard = loaded.vocab.voice.phrasing, loaded.vocab.voice.copy_guard
    assert phrasing is not None and phrasing.unigram[phrasing.word_id("coffee")] > 0
    assert (
        guard is not None
        and guard.allowed(loaded.vocab.encode(sample_quotes[0][:23]), loaded.vocab.chars) is not None
    )
    assert loaded.metadata["val_bpc"] == 4.5  # the rest of the metadata is kept
    assert read_checkpoint(tiny_checkpoint)["metadata"].get("voice") is None  # --out leaves the source alone


def test_calibrate_command_refits_in_place(tiny_checkpoint, capsys):
    code = main(["calibrate", "--checkpoint", str(tiny_checkpoint), "--corpus", str(SAMPLE_CORPUS),
                 "--voice-samples", "8"])  # fmt: skip
    assert code == 0
    assert "voice: lexicon of" in capsys.readouterr().out
    assert load_checkpoint(tiny_checkpoint).vocab.voice.calibration is not None
    assert model_main(["info", str(tiny_checkpoint)]) == 0
    info = capsys.readouterr().out
    assert "word triples of the training quotes" in info and "no-copy guard: " in info
    assert 'quotes end after: " . ?' in info  # the sample quotes end so, every one
    assert "capitalized mid-sentence: " in info and " gerald " in info  # a name of the sample quotes


def test_calibrate_can_keep_the_length_calibration(tiny_checkpoint, tmp_path, sample_quotes, capsys):
    fitted = tmp_path / "fitted.pt"
    voice = refit_checkpoint(tiny_checkpoint, sample_quotes[:40], samples=16, out=fitted)
    code = main(["calibrate", "--checkpoint", str(fitted), "--corpus", str(SAMPLE_CORPUS),
                 "--keep-calibration", "--voice-samples", "8"])  # fmt: skip
    assert code == 0
    refitted = load_checkpoint(fitted).vocab.voice
    assert refitted.calibration == voice.calibration and refitted.info["calibration"] == "kept"
    assert "samples" not in refitted.info  # no length fit ran
    assert len(refitted.lexicon) > len(voice.lexicon)  # the words refitted, from the whole corpus
    bare = tmp_path / "bare.pt"
    refit_checkpoint(tiny_checkpoint, sample_quotes, samples=0, out=bare)
    code = main(["calibrate", "--checkpoint", str(bare), "--corpus", str(SAMPLE_CORPUS),
                 "--keep-calibration"])  # fmt: skip
    assert code != 0 and "no length calibration to keep" in capsys.readouterr().err
