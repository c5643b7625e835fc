"""What ``python -m training train | evaluate | finetune`` do, given parsed arguments."""

from __future__ import annotations

import argparse
import json
import shlex
import time

import torch

from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from model.device import resolve_device
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab
from training.batching import encode_quotes
from training.cli_support import corpus_metadata, read_corpus, say, settings_from, use_recorded_corpus
from training.corpus import corpus_fingerprint, split_quotes
from training.distributed import setup, teardown
from training.finetune import finetune_from_args
from training.scoring import score_quotes
from training.trainer import state_path_for, train_model
from training.voice import refit_checkpoint


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
    use_recorded_corpus(args, meta, path)  # by default, the corpus the model was trained on
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
    finetune_from_args(args)
