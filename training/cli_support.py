"""What the training commands share once their arguments are parsed: reading the corpus, what a
checkpoint records about it, the trainer's settings, and status lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from model.vocab import Vocab
from training.corpus import CorpusStats, corpus_fingerprint, load_quotes
from training.postgres_reader import is_database_url, shown
from training.trainer import TrainSettings

REPO = Path(__file__).resolve().parent.parent


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository root (``../shared/data/x.txt``), so metadata travels; a
    database URL as it is, less any password."""
    if is_database_url(path):
        return shown(str(path))
    return os.path.relpath(Path(path).resolve(), REPO)


def corpus_metadata(args: argparse.Namespace, quotes: list[str], stats: CorpusStats) -> dict:
    """What a checkpoint records about its corpus, enough to load the same split again."""
    meta = {
        "corpus": repo_relative(args.corpus),
        "corpus_format": stats.format,
        "corpus_fingerprint": corpus_fingerprint(quotes),
        "corpus_quotes": len(quotes),
        "val_fraction": args.val_fraction,
    }
    for key in ("speaker", "where", "guild_id"):
        value = getattr(args, key, None)
        if value is not None:
            meta[f"corpus_{key}"] = value
    if getattr(args, "column", "text") != "text":
        meta["corpus_column"] = args.column
    return meta


def read_corpus(args: argparse.Namespace, vocab: Vocab | None = None) -> tuple[list[str], CorpusStats]:
    stats = CorpusStats()
    quotes = load_quotes(
        args.corpus,
        args.format,
        speaker=args.speaker,
        column=args.column,
        where=args.where,
        blocks=args.blocks,
        guild_id=args.guild_id,
        min_votes=args.min_votes,
        vocab=vocab,
        stats=stats,
    )
    return quotes, stats


def settings_from(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(
        minutes=args.minutes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        chunk_len=args.chunk_len,
        lr=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        clip=args.clip,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        progress=args.progress,
        keep_rank_weights=args.keep_rank_weights,
    )


def say(args: argparse.Namespace, message: str, is_main: bool = True) -> None:
    """A status line for people (stderr), or a JSON line when a parent process reads ``--progress jsonl``."""
    if not is_main or args.progress == "none":
        return
    if args.progress == "jsonl":
        print(json.dumps({"event": "info", "message": message}), flush=True)
    else:
        print(message, file=sys.stderr, flush=True)
