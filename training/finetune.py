"""Fine-tuning: continue a checkpoint on new quotes, with a replay share of its original corpus.

    python -m training finetune --from data/models/default.pt --corpus guild.jsonl --out runs/guild.pt

The new quotes are split by hash like any corpus; the model trains on the new training quotes mixed
with a share (``--replay-share``, default 0.3) of training quotes from the corpus the parent was
trained on (named in its checkpoint, or ``--replay-corpus``), so it takes on the new voice without
forgetting how to write. The learning rate starts lower (5e-4) than for training from scratch.
Characters the parent has never seen grow its vocabulary: new ids are appended, every old id keeps
its embedding and output row, so right after growing the model gives old text exactly the logits it
gave before. Validation is on the held-out new quotes; the parent's score on the same quotes is
recorded beside the new one, so a caller can refuse a fine-tune that made things worse.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from model.checkpoint import load_checkpoint
from model.device import resolve_device
from model.network import CharLSTM
from model.vocab import Vocab
from training.batching import encode_quotes
from training.commands import REPO, corpus_metadata, read_corpus, repo_relative, say, settings_from
from training.corpus import CorpusError, hash_unit, load_quotes, split_quotes
from training.distributed import setup, teardown
from training.scoring import score_quotes
from training.trainer import train_model
from training.voice import refit_checkpoint


def grow_for(model: CharLSTM, vocab: Vocab, texts: Sequence[str]) -> Vocab:
    """The vocabulary grown by the new characters of ``texts``; ``model`` grows to match, old ids kept."""
    grown = vocab.grow(texts)
    model.grow_vocab(len(grown))
    return grown


def split_new(quotes: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """The hash split, but never an empty validation side while there are two quotes or more.

    A guild's few favoured quotes can all hash to the training side; then the quote with the lowest
    hash (still a fixed choice, independent of order) is held out instead.
    """
    train, val = split_quotes(quotes, val_fraction)
    if not val and len(train) >= 2 and val_fraction > 0:
        lowest = min(train, key=hash_unit)
        train.remove(lowest)
        val.append(lowest)
    return train, val


def replay_source(args: argparse.Namespace, parent_meta: dict) -> tuple[str | None, str | None, str | None]:
    """(path, format, speaker) of the corpus to replay: the option, else what the checkpoint records."""
    if args.replay_corpus:
        return args.replay_corpus, args.replay_format, None
    # A fine-tuned parent records the base corpus it replayed; a base model records its own corpus.
    corpus = parent_meta.get("replay_corpus", parent_meta.get("corpus"))
    if corpus is None:
        return None, None, None
    fmt = parent_meta.get("replay_format", parent_meta.get("corpus_format"))
    speaker = parent_meta.get("replay_speaker", parent_meta.get("corpus_speaker"))
    return str(REPO / corpus), args.replay_format or fmt, speaker


def replay_quotes(
    args: argparse.Namespace, parent_meta: dict, vocab: Vocab, wanted: int, seed: int
) -> tuple[list[str], dict]:
    """Up to ``wanted`` training-side quotes of the replay corpus, and metadata naming it."""
    path, fmt, speaker = replay_source(args, parent_meta)
    if path is None or wanted == 0:
        return [], {}
    if not Path(path).is_file():
        if args.replay_corpus:
            raise CorpusError(path, "no such file (the --replay-corpus)")
        say(args, f"replay corpus {path} is not on this machine; fine-tuning on the new quotes alone")
        return [], {}
    base = load_quotes(path, fmt, speaker=speaker, vocab=vocab)
    base_train, _ = split_quotes(
        base, parent_meta.get("val_fraction", 0.1)
    )  # its validation side stays unseen
    chosen = random.Random(seed).sample(base_train, min(wanted, len(base_train)))
    meta = {"replay_corpus": repo_relative(path), "replay_quotes": len(chosen)}
    if fmt:
        meta["replay_format"] = fmt
    if speaker:
        meta["replay_speaker"] = speaker
    return chosen, meta


def finetune_from_args(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    if not 0.0 <= args.replay_share < 1.0:
        raise ValueError(f"--replay-share must be in [0, 1), got {args.replay_share}")
    if args.threads:
        torch.set_num_threads(args.threads)
    world, device = setup(resolve_device(args.device))
    try:
        parent = load_checkpoint(args.parent, device=device)
        quotes, stats = read_corpus(args, parent.vocab)
        train_new, val_new = split_new(quotes, args.val_fraction)
        if not val_new:
            raise ValueError(f"{args.corpus}: fine-tuning needs at least 2 quotes, found {len(quotes)}")
        wanted = round(len(train_new) * args.replay_share / (1.0 - args.replay_share))
        replay, replay_meta = replay_quotes(args, parent.metadata, parent.vocab, wanted, args.seed)
        say(
            args,
            f"{stats.summary()}; {len(train_new)} train + {len(replay)} replay, {len(val_new)} validation",
        )
        model = parent.model
        vocab = grow_for(model, parent.vocab, [*quotes, *replay])
        if len(vocab) > len(parent.vocab):
            say(
                args,
                f"vocabulary grown by {len(vocab) - len(parent.vocab)}: {''.join(vocab.chars[-8:])!r}...",
            )
        val_ids = encode_quotes(val_new, vocab)
        parent_score = score_quotes(model, val_ids)  # the parent, grown: its old logits are unchanged
        meta = {
            **corpus_metadata(args, quotes, stats),
            **replay_meta,
            "parent": str(args.parent),
            "parent_val_nats": parent_score.nats,
            "trained_by": "python -m training finetune",
            "torch": str(torch.__version__),
        }
        train_quotes = [*train_new, *replay]
        started = time.time()
        result = train_model(
            model, vocab, encode_quotes(train_quotes, vocab), val_ids, settings, args.out, metadata=meta,
            world=world,
        )  # fmt: skip
        if world.is_main:  # the new voice: the words it trained on (replay included), the new quotes' lengths
            voice_say = lambda m: say(args, m)  # noqa: E731
            words = [*train_new, *replay]
            refit_checkpoint(
                args.out, train_new, samples=args.voice_samples, say=voice_say, lexicon_quotes=words
            )
        say(
            args,
            f"done in {time.time() - started:.0f} s: validation {result.best_nats:.4f} nats/char "
            f"(parent {parent_score.nats:.4f}) -> {args.out}",
            world.is_main,
        )
    finally:
        teardown(world)
