"""Judging a fine-tuned candidate against the model it would replace, before it may serve anyone.

    python -m training.judge --candidate runs/guild.pt --current data/models/default.pt \\
        --db quotebot.db --guild 1234 --min-votes 1 --json
    python -m training.judge ... --margin 0.02 --loop-target 0.1      # also print the verdict

Both models are scored on the same held-out text, in nats per character (each quote from its
begin-of-quote, dropout off): a slice of the base text's validation side (``training.base_text``: the
``--base-corpus``, else the corpus the current checkpoint names when it is here, else the current
model's own cached samples; never trained on, since replay draws from the training side only) and the
server's held-out quotes (the same two-quote rule and hash split fine-tuning used). The server's quotes
are scored whole for both models: a character the current model never saw costs it the stated price
of ``training.fair_score`` (``ln |V|`` of the candidate), so unseen characters never make the judge
fail. Then both run the loop test (``training/loops.py``) on the same seeds with the same random
streams and the bot's sampling chain.

``decide`` (``training.verdict``) turns the figures into a verdict: promote only if the candidate is not
worse on the base text than the current model plus ``margin``, and loops on no more seeds than
``loop_target`` (or, when the current model is already above the target, no more than it does).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import torch

from model.checkpoint import CheckpointError, LoadedModel, load_checkpoint
from model.generate import Generator
from training.base_text import BaseText, base_text
from training.batching import encode_quotes
from training.corpus import CorpusError, dedupe, hash_unit, load_quotes
from training.fair_score import score_with_unknowns, uniform_cost
from training.finetune import split_new
from training.loops import loop_rate, make_seeds
from training.options import add_corpus_options, add_replay_cache_options
from training.scoring import score_quotes
from training.server_text import plan_new_characters
from training.verdict import decide

BASE_QUOTES = 200  # base validation quotes scored (enough for a stable mean, quick on a CPU)
LOOP_SEEDS = 24


def known_by_all(quotes: Sequence[str], models: Sequence[LoadedModel]) -> list[str]:
    """The quotes whose every character each model's vocabulary knows."""
    return [q for q in quotes if all(not m.vocab.missing(q) for m in models)]


def nats(loaded: LoadedModel, quotes: Sequence[str]) -> float | None:
    """Mean nats per character of ``quotes`` under the model; None when there is nothing to score."""
    if not quotes:
        return None
    return score_quotes(loaded.model, encode_quotes(list(quotes), loaded.vocab)).nats


def fair_nats(loaded: LoadedModel, quotes: Sequence[str], unknown_cost: float) -> float | None:
    """Mean nats per character with the stated cost for unknown characters (``training.fair_score``)."""
    return score_with_unknowns(loaded, quotes, unknown_cost).nats if quotes else None


def base_slice(base: BaseText, limit: int = BASE_QUOTES) -> list[str]:
    """Up to ``limit`` held-out quotes of the base text, chosen by hash (stable)."""
    return sorted(base.val, key=hash_unit)[:limit]


def server_quotes(quotes: Sequence[str], current: LoadedModel) -> list[str]:
    """The server's quotes as fine-tuning trained on them: the two-quote rule against the current model."""
    return dedupe(plan_new_characters(quotes, current.vocab).apply(quotes))


def judge(
    candidate: LoadedModel,
    current: LoadedModel,
    guild_quotes: Sequence[str],
    base_quotes: Sequence[str],
    max_chars: int = 400,
    seeds: int = LOOP_SEEDS,
) -> dict:
    """The figures of one comparison (see the module docstring); plain JSON values.

    The base text is the current model's (its corpus or samples), so both models know its characters;
    the server's quotes are scored whole for both, unknown characters at the stated cost.
    """
    both = (candidate, current)
    base = known_by_all(base_quotes, both)
    cost = uniform_cost(len(candidate.vocab))
    unknown = sum(1 for q in guild_quotes for c in q if c not in current.vocab)
    figures: dict = {
        "base_quotes": len(base),
        "base_current_nats": nats(current, base),
        "base_candidate_nats": nats(candidate, base),
        "guild_quotes": len(guild_quotes),
        "guild_current_nats": fair_nats(current, guild_quotes, cost),
        "guild_candidate_nats": fair_nats(candidate, guild_quotes, cost),
        "guild_unknown_chars": unknown,
        "unknown_char_cost": cost,
    }
    texts = list(guild_quotes) + list(base)
    loop_seeds = [s for s in make_seeds(texts, seeds, current.vocab) if not candidate.vocab.missing(s)]
    for name, loaded in (("current", current), ("candidate", candidate)):
        rate, _ = loop_rate(Generator(loaded.model, loaded.vocab), loop_seeds, max_chars, rng_seed=0)
        figures[f"loop_{name}"] = rate
    figures.update({"loop_seeds": len(loop_seeds), "loop_max_chars": max_chars})
    return figures


def trained_on(candidate: LoadedModel) -> dict:
    """What the candidate's checkpoint says about its training, for the record."""
    meta = candidate.metadata
    names = {"corpus_quotes": "quotes", "replay_quotes": "replayed", "steps": "steps", "val_nats": "val_nats"}
    names.update({"training_seconds": "seconds", "parent_val_nats": "parent_val_nats"})
    names.update({"replay_source": "replay_source", "new_chars": "new_chars"})
    return {f"trained_{short}": meta[key] for key, short in names.items() if key in meta}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.judge", description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", required=True, help="the fine-tuned checkpoint")
    parser.add_argument("--current", required=True, help="the checkpoint serving now (its parent)")
    add_corpus_options(parser)
    parser.add_argument("--base-corpus", default=None, help="default: the corpus the current model names")
    parser.add_argument("--base-format", default=None, help="format of --base-corpus (default: guessed)")
    add_replay_cache_options(parser)
    parser.add_argument("--max-chars", type=int, default=400, help="length cap of the loop test")
    parser.add_argument("--seeds", type=int, default=LOOP_SEEDS, help="seeds of the loop test")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--margin", type=float, default=None, help="with --loop-target: print a verdict")
    parser.add_argument("--loop-target", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        current = load_checkpoint(args.current)
        candidate = load_checkpoint(args.candidate)
        guild = load_quotes(
            args.corpus, args.format, speaker=args.speaker, column=args.column, where=args.where,
            blocks=args.blocks, guild_id=args.guild_id, min_votes=args.min_votes, vocab=current.vocab,
        )  # fmt: skip
        _, guild_val = split_new(server_quotes(guild, current), args.val_fraction)  # fine-tuning's held out
        base = base_text(
            current, args.current, corpus=args.base_corpus, corpus_format=args.base_format,
            cache=args.replay_cache, samples=args.replay_samples,
        )  # fmt: skip
        figures = {
            "base_source": base.kind,
            "base_text": base.describe(),
            **judge(candidate, current, guild_val, base_slice(base), args.max_chars, args.seeds),
            **trained_on(candidate),
        }
    except (CorpusError, CheckpointError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.margin is not None and args.loop_target is not None:
        verdict = decide(figures, args.margin, args.loop_target)
        figures.update({"promote": verdict.promote, "reasons": verdict.reasons})
    if args.json:
        # NaN is not JSON: a broken score is written as null, which decide() refuses.
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in figures.items()
        }
        print(json.dumps({"event": "judged", **clean}), flush=True)
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
