"""What ``python -m training train | evaluate | finetune`` do, given parsed arguments."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from model.device import resolve_device
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab
from training.batching import encode_quotes
from training.corpus import CorpusStats, corpus_fingerprint, load_quotes, split_quotes
from training.distributed import setup, teardown
from training.scoring import score_quotes
from training.trainer import TrainSettings, state_path_for, train_model
from training.voice import refit_checkpoint

REPO = Path(__file__).resolve().parent.parent


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository root (``../shared/data/x.txt``), so metadata travels."""
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


def run_train(args: argparse.Namespace) -> None:
    settings = settings_from(args)  # checks the options before any slow work
    if args.threads:
        torch.set_num_threads(args.threads)
    world, device = setup(resolve_device(args.device))
    try:
        quotes, stats = read_corpus(args)
        train, val = split_quotes(quotes, args.val_fraction)
        say(args, f"{stats.summary()}; {len(train)} train, {len(val)} validation", world.is_main)
        if args.resume:
            loaded = load_checkpoint(args.resume, device=device)
            if not state_path_for(args.resume).is_file():
                raise ValueError(
                    f"{args.resume}: no training state beside it ({state_path_for(args.resume)})"
                )
            model, vocab = loaded.model, loaded.vocab
            vocab = vocab.grow(quotes)
            model.grow_vocab(len(vocab))
        else:
            vocab = Vocab.from_texts(quotes)
            torch.manual_seed(args.seed)
            config = ModelConfig(len(vocab), args.embed, args.hidden, args.layers, args.dropout)
            model = CharLSTM(config).to(device)
        say(
            args,
            f"model: {model.num_parameters():,} parameters, {len(vocab)} ids, on {device}",
            world.is_main,
        )
        metadata = {
            **corpus_metadata(args, quotes, stats),
            "trained_by": "python -m training train",
            "train_command": "python -m training " + shlex.join(args.argv),
            "torch": str(torch.__version__),
            "threads": torch.get_num_threads(),
        }
        started = time.time()
        result = train_model(
            model,
            vocab,
            encode_quotes(train, vocab),
            encode_quotes(val, vocab),
            settings,
            args.out,
            metadata=metadata,
            world=world,
            resume=args.resume,
        )
        if world.is_main:
            refit_checkpoint(args.out, train, None, samples=args.voice_samples, say=lambda m: say(args, m))
        say(
            args,
            f"done in {time.time() - started:.0f} s, {result.steps} steps ({result.stopped}): best val "
            f"{result.best_nats:.4f} nats/char = {result.best_bpc:.3f} bits/char -> {args.out}",
            world.is_main,
        )
    finally:
        teardown(world)


def run_evaluate(args: argparse.Namespace) -> None:
    path = args.checkpoint or str(DEFAULT_CHECKPOINT)
    loaded = load_checkpoint(path, device=resolve_device(args.device))
    meta = loaded.metadata
    if args.corpus is None:
        # The corpus the model was trained on, as recorded in the checkpoint (relative to the repo).
        if "corpus" not in meta:
            raise ValueError(f"{path}: no corpus recorded in the checkpoint; give --corpus")
        args.corpus = str(REPO / meta["corpus"])
        args.format = args.format or meta.get("corpus_format")
        args.speaker = args.speaker or meta.get("corpus_speaker")
        args.val_fraction = meta.get("val_fraction", args.val_fraction)
    quotes, _ = read_corpus(args, loaded.vocab)
    chosen = quotes if args.whole else split_quotes(quotes, args.val_fraction)[1]
    if not chosen:
        raise ValueError("the validation split is empty; use --whole to score every quote")
    usable = [q for q in chosen if not loaded.vocab.missing(q)]
    skipped = len(chosen) - len(usable)
    score = score_quotes(loaded.model, encode_quotes(usable, loaded.vocab))
    same = meta.get("corpus_fingerprint") == corpus_fingerprint(quotes)
    result = {
        "checkpoint": path,
        "corpus": args.corpus,
        "split": "whole" if args.whole else "validation",
        "quotes": len(usable),
        "skipped_unknown_chars": skipped,
        "characters": score.tokens,
        "nats_per_char": round(score.nats, 4),
        "bits_per_char": round(score.bits_per_char, 4),
        "same_corpus_as_training": same,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{path} on {args.corpus} ({result['split']}, {len(usable)} quotes, {score.tokens:,} characters):")
    print(f"  {score.nats:.4f} nats/char = {score.bits_per_char:.4f} bits/char")
    if skipped:
        print(f"  skipped {skipped} quotes with characters the model has never seen")
    if not same:
        print("  note: not the corpus the model was trained on (fingerprints differ)")


def run_finetune(args: argparse.Namespace) -> None:
    from training.finetune import finetune_from_args

    finetune_from_args(args)
