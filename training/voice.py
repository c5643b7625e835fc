"""The voice fitted after training: the lexicon and the end-of-quote calibration, saved in the checkpoint.

    python -m training calibrate --checkpoint runs/pat.pt            # its own corpus, from the metadata
    python -m training calibrate --checkpoint m.pt --corpus quotes.txt --out m-voice.pt

``train`` and ``finetune`` run this on their best checkpoint before they finish, so a retrained model
never serves with a stale calibration. The lexicon is the words the model trained on (for ``finetune``:
the new quotes and the replayed ones), plus the ``GENERAL_WORDS`` most common English words from
``wordfreq`` when it is installed (without it: the corpus's words alone, and a note says so);
``calibrate --keep-lexicon`` also keeps the words already in the checkpoint, ``--keep-calibration`` its
length calibration (the words refitted, the lengths as they were).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from model.calibrate import fit_length_calibration, opening_seeds
from model.capitals import Capitals
from model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from model.copy_guard import CopyGuard
from model.generate import Generator
from model.phrasing import Phrasing
from model.voice import (
    APOSTROPHE,
    LengthCalibration,
    Lexicon,
    Voice,
    quote_endings,
    uses_quote_apostrophes,
    words_of,
)

GENERAL_WORDS = 30_000
PRUNE_ABOVE_WORDS = 100_000  # tiny Shakespeare's 200,000 words would add 4 MB of single n-grams
VOWELS = set("aeiouy")


def general_words(count: int = GENERAL_WORDS) -> list[str] | None:
    """The ``count`` most common English words of ``wordfreq`` that look like words; ``None`` without it.

    Web text's abbreviations and chat spellings (``cpr``, ``tht``, ``nd``) are left out: a word needs a
    vowel (or ``y``), and a one-letter word must be ``a``, ``i`` or ``o``. An untrained-looking model
    otherwise strings them together and the lexicon calls that spelled right.
    """
    try:
        from wordfreq import top_n_list
    except ImportError:
        return None
    words = (w for word in top_n_list("en", count) for w in words_of(word))
    return sorted({w for w in words if (len(w) > 1 and VOWELS & set(w)) or w in ("a", "i", "o")})


def contraction_pieces(words: set[str]) -> set[str]:
    """The halves of the contractions in ``words`` that a word list holds as words of their own: the
    endings (``t``, ``re``, ``ll``) and the ``n't`` stems (``don``, ``isn``: ``do``, ``is`` + ``n``).

    Web text's tokenizers split ``don't``, so wordfreq lists ``don`` and ``re``; as words they let a
    quote write "we re" or "I don go" where the character wrote "we're" and "don't".
    """
    pairs = [w.split(APOSTROPHE, 1) for w in words if APOSTROPHE in w]
    endings = {end for _, end in pairs if len(end) <= 2}
    stems = {stem for stem, end in pairs if end == "t" and stem.endswith("n") and stem[:-1] in words}
    return endings | stems


def build_lexicon(train_quotes: Sequence[str], parent: Voice | None = None) -> tuple[Lexicon, dict]:
    """The corpus's words, the parent's lexicon and the general list; with a note of what went in."""
    corpus = {w for quote in train_quotes for w in words_of(quote)}
    listed = set(parent.lexicon.words) if parent is not None and parent.lexicon is not None else set()
    general = general_words()
    listed.update(general or [])
    listed -= contraction_pieces(corpus | listed) - corpus  # the corpus's own words all stay
    info = {"corpus_words": len(corpus), "general_words": len(general) if general else 0}
    return Lexicon(corpus | listed), info


def build_phrasing(train_quotes: Sequence[str], lexicon: Lexicon) -> Phrasing:
    """The word model of the character's own quotes (a large corpus keeps n-grams seen twice or more)."""
    words = sum(len(words_of(quote)) for quote in train_quotes)
    return Phrasing.fit(train_quotes, lexicon, min_count=2 if words > PRUNE_ABOVE_WORDS else 1)


def fit_voice(
    generator: Generator,
    train_quotes: Sequence[str],
    parent: Voice | None = None,
    samples: int = 256,
    lexicon_quotes: Sequence[str] | None = None,
    rounds: int = 8,
    rng_seed: int = 0,
) -> Voice:
    """A lexicon from the quotes, then a length calibration fitted with it on (``samples`` 0: none)."""
    lexicon, info = build_lexicon(train_quotes if lexicon_quotes is None else lexicon_quotes, parent)
    phrasing = build_phrasing(train_quotes, lexicon)
    info.update(phrasing_bigrams=len(phrasing.bigram), phrasing_trigrams=len(phrasing.trigram))
    guard, ends = CopyGuard.fit(train_quotes), quote_endings(train_quotes)
    capitals, marks = Capitals.fit(train_quotes), uses_quote_apostrophes(train_quotes)
    voice = Voice(lexicon, None, info, phrasing, guard, ends, capitals, marks)
    if samples and len(train_quotes) >= 2:
        vocab = generator.vocab.with_voice(voice)
        usable = [q for q in train_quotes if not vocab.missing(q)]
        seeds = opening_seeds(usable, samples, rng_seed)
        started = time.time()
        lengths = [len(q) for q in usable]
        fitter = Generator(generator.model, vocab)
        voice.calibration = fit_length_calibration(fitter, seeds, lengths, rounds=rounds, rng_seed=rng_seed)
        info.update(samples=samples, rounds=rounds, fit_seconds=round(time.time() - started, 1))
    return voice


def refit_checkpoint(
    path: str | Path,
    train_quotes: Sequence[str],
    parent: Voice | None = None,
    out: str | Path | None = None,
    samples: int = 256,
    say: Callable[[str], None] = lambda message: None,
    lexicon_quotes: Sequence[str] | None = None,
    calibration: LengthCalibration | None = None,
) -> Voice:
    """Fit the voice of the checkpoint at ``path`` and save it there (or at ``out``), atomically.

    Lengths are fitted to ``train_quotes`` unless a ``calibration`` is given to keep; the lexicon takes
    the words of ``lexicon_quotes`` (default: the same quotes), ``parent``'s lexicon, and the general list.
    """
    loaded = load_checkpoint(path)
    generator = Generator(loaded.model, loaded.vocab)
    voice = fit_voice(generator, train_quotes, parent, 0 if calibration else samples, lexicon_quotes)
    if calibration is not None:
        voice.calibration = calibration
        voice.info["calibration"] = "kept"
    metadata = {k: v for k, v in read_checkpoint(path)["metadata"].items() if k != "voice"}
    save_checkpoint(out or path, loaded.model, loaded.vocab.with_voice(voice), metadata)
    if not voice.info.get("general_words"):
        say("note: wordfreq is not installed, so the lexicon holds the corpus's words only")
    bins = len(voice.calibration.edges) if voice.calibration else 0
    say(f"voice: lexicon of {len(voice.lexicon or ())} words, length calibration of {bins} bins")
    return voice


def run_calibrate(args: argparse.Namespace) -> None:
    """``python -m training calibrate``: refit a checkpoint's voice on its corpus's training split."""
    from training.cli_support import read_corpus, use_recorded_corpus
    from training.corpus import split_quotes

    meta = read_checkpoint(args.checkpoint)["metadata"]
    use_recorded_corpus(args, meta, args.checkpoint)
    quotes, _ = read_corpus(args)
    train, _ = split_quotes(quotes, args.val_fraction)
    stored = Voice.from_metadata(meta["voice"]) if meta.get("voice") else None
    kept = stored if args.keep_lexicon else None
    calibration = stored.calibration if args.keep_calibration and stored is not None else None
    if args.keep_calibration and calibration is None:
        raise ValueError(f"{args.checkpoint} has no length calibration to keep")
    refit_checkpoint(
        args.checkpoint, train, kept, args.out, args.voice_samples, say=print, calibration=calibration
    )
