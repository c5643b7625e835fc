"""Fine-tuning: continue a checkpoint on new quotes, with a replay share of its original corpus.

    python -m training finetune --from data/models/default.pt --corpus guild.jsonl --out runs/guild.pt

The new quotes are split by hash like any corpus; the model trains on the new training quotes mixed
with a share (``--replay-share``, default 0.3) of the parent's base text (``training.base_text``: the
corpus it was trained on when that is here, or ``--replay-corpus``; else its own cached samples), so it
takes on the new voice without forgetting how to write. The learning rate starts lower (5e-4) than
for training from scratch. Characters the parent has never seen grow its vocabulary when two quotes
or more use them (the two-quote rule, ``training.server_text``; rarer ones are replaced or dropped):
new ids are appended, every old id keeps its embedding and output row, so right after growing the
model gives old text exactly the logits it gave before. Validation is on the held-out new quotes;
the parent's score on the same quotes is recorded beside the new one, so a caller can refuse a
fine-tune that made things worse.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from model.checkpoint import load_checkpoint
from model.device import resolve_device
from model.network import CharLSTM
from model.vocab import Vocab
from training.base_text import BaseText, base_text
from training.batching import encode_quotes
from training.cli_support import corpus_metadata, read_corpus, say, settings_from
from training.corpus import dedupe, hash_unit, split_quotes
from training.distributed import setup, teardown
from training.scoring import score_quotes
from training.server_text import plan_new_characters
from training.trainer import train_model
from training.voice import refit_checkpoint

DRIFT_MONITOR = 150  # base quotes scored at each validation that beats the best (a fraction of a second)


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


def replay_quotes(base: BaseText, wanted: int, seed: int) -> list[str]:
    """Up to ``wanted`` quotes of the base text's training side (its validation side stays unseen)."""
    return random.Random(seed).sample(base.train, min(wanted, len(base.train)))


def drift_guard(
    model: CharLSTM, vocab: Vocab, base: BaseText, replayed: Sequence[str], margin: float
) -> Callable[[], tuple[bool, dict]]:
    """A trainer guard: keep a checkpoint only while its nats on unreplayed base quotes stay within
    ``margin`` of the parent's (measured once, now), so the best model kept is one the judge can promote.

    The monitor is ``DRIFT_MONITOR`` training-side base quotes that are not replayed: never the judge's
    held-out side, and not learnt by heart either.
    """
    seen = set(replayed)
    monitor = [q for q in sorted(base.train, key=hash_unit) if q not in seen][:DRIFT_MONITOR]
    ids = encode_quotes([q for q in monitor if not vocab.missing(q)], vocab)
    if not ids:
        return lambda: (True, {})
    before = score_quotes(model, ids).nats

    def guard() -> tuple[bool, dict]:
        now = score_quotes(model, ids).nats
        return now <= before + margin, {"base_drift": now - before}

    return guard


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
        plan = plan_new_characters(quotes, parent.vocab)
        quotes = dedupe(plan.apply(quotes))
        say(args, plan.summary())
        train_new, val_new = split_new(quotes, args.val_fraction)
        if not val_new:
            raise ValueError(f"{args.corpus}: fine-tuning needs at least 2 quotes, found {len(quotes)}")
        wanted = round(len(train_new) * args.replay_share / (1.0 - args.replay_share))
        replay, replay_meta, base = [], {}, None
        if wanted:
            base = base_text(
                parent, args.parent, corpus=args.replay_corpus, corpus_format=args.replay_format,
                cache=args.replay_cache, samples=args.replay_samples, say=lambda m: say(args, m),
            )  # fmt: skip
            replay = replay_quotes(base, wanted, args.seed)
            replay_meta = {**base.metadata(), "replay_quotes": len(replay)}
            say(args, f"replaying {len(replay)} quotes of {base.describe()}")
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
            "new_chars": "".join(plan.joining),
            "parent": str(args.parent),
            "parent_val_nats": parent_score.nats,
            "trained_by": "python -m training finetune",
            "torch": str(torch.__version__),
        }
        train_quotes = [*train_new, *replay]
        guard = (
            drift_guard(model, vocab, base, replay, args.base_margin) if base and args.base_margin else None
        )
        if guard is not None:
            meta["base_margin"] = args.base_margin
        started = time.time()
        result = train_model(
            model, vocab, encode_quotes(train_quotes, vocab), val_ids, settings, args.out, metadata=meta,
            world=world, guard=guard,
        )  # fmt: skip
        if world.is_main and not Path(args.out).is_file():
            raise ValueError(
                f"every checkpoint drifted more than {args.base_margin:g} nats/char from the parent on the "
                "base text, so none was kept (a lower --lr or a larger --replay-share may help)"
            )
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
