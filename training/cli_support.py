"""What the training commands share once their arguments are parsed: reading the corpus, what a
checkpoint records about it, the trainer's settings, and status lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from model.bundled import DATA_DIR
from model.vocab import Vocab
from training.corpus import CorpusStats, corpus_fingerprint, load_quotes
from training.postgres_reader import is_database_url, shown
from training.trainer import TrainSettings

SOURCE_ROOT = DATA_DIR.parent
"""The folder that holds the bundled data: a clone's root, or ``site-packages`` for a wheel."""


def repo_relative(path: str | Path) -> str:
    """How a checkpoint names a corpus, so the name travels: ``data/...`` for a bundled file (found in
    any install), relative to the source root for a file beside it (``../corpora/x.txt`` from a
    clone), else the absolute path (a wheel's source root is ``site-packages``, no place for a corpus)."""
    if is_database_url(path):
        return shown(str(path))  # a database URL as it is, less any password
    resolved = Path(path).resolve()
    if resolved.is_relative_to(DATA_DIR):
        return str(Path("data") / resolved.relative_to(DATA_DIR))
    if resolved.is_relative_to(SOURCE_ROOT.parent):
        return os.path.relpath(resolved, SOURCE_ROOT)
    return str(resolved)


def resolve_recorded(name: str) -> Path:
    """The file a checkpoint's corpus name stands for (see ``repo_relative``)."""
    path = Path(name)
    if path.is_absolute():
        return path
    if path.parts[:1] == ("data",):
        return DATA_DIR.joinpath(*path.parts[1:])
    return SOURCE_ROOT / path


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


def use_recorded_corpus(args: argparse.Namespace, meta: dict, path: str) -> None:
    """Without ``--corpus``: the corpus the checkpoint at ``path`` records (``meta``), its format, speaker
    and validation share, found as ``resolve_recorded`` finds it."""
    if args.corpus is not None:
        return
    if "corpus" not in meta:
        raise ValueError(f"{path}: no corpus recorded in the checkpoint; give --corpus")
    args.corpus = str(resolve_recorded(meta["corpus"]))
    args.format = args.format or meta.get("corpus_format")
    args.speaker = args.speaker or meta.get("corpus_speaker")
    args.val_fraction = meta.get("val_fraction", args.val_fraction)
