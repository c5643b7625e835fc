"""Command line for the model core.

    python -m model sample "Hey," "The"            # 1 completion of each seed, bundled model
    python -m model sample --n 3 --greedy --jsonl I
    python -m model sample --best-of 4 --seed-rng 7 --top-p 0.95 "Are we back"
    python -m model info data/models/default.pt

Errors (bad file, unknown device, unknown characters) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from model.best_of import complete_best_of
from model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint
from model.device import DeviceError, resolve_device
from model.generate import Generator as CharGenerator
from model.generate import GreedyDecoder
from model.sampling import FIELD_HELP, SamplingConfig, SamplingDecoder
from model.vocab import UnknownCharactersError, UnknownPolicy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="complete seeds with a checkpoint")
    sample.add_argument(
        "seeds", nargs="*", default=[""], metavar="SEED", help="text to complete (default: none)"
    )
    sample.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="model file (default: bundled)")
    sample.add_argument("--n", type=int, default=1, help="completions per seed")
    sample.add_argument("--greedy", action="store_true", help="always the most likely character (loops!)")
    sample.add_argument("--best-of", type=int, default=1, help="keep the best of N candidates (default 1)")
    sample.add_argument("--seed-rng", type=int, default=None, help="RNG seed for reproducible output")
    add_sampling_arguments(sample)
    sample.add_argument("--max-chars", type=int, default=300, help="length cap of a whole quote")
    sample.add_argument(
        "--unknown",
        choices=[p.value for p in UnknownPolicy],
        default="replace",
        help="what to do with seed characters the model has never seen",
    )
    sample.add_argument("--device", default="auto")
    sample.add_argument("--jsonl", action="store_true", help="one JSON object per completion")
    info = sub.add_parser("info", help="print a checkpoint's metadata")
    info.add_argument("path", nargs="?", default=str(DEFAULT_CHECKPOINT))
    return parser


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per ``SamplingConfig`` knob (``top_p`` -> ``--top-p``); unset ones keep the default."""
    defaults = SamplingConfig()
    for field in fields(SamplingConfig):
        default = getattr(defaults, field.name)
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=type(default),
            default=None,
            help=f"{FIELD_HELP[field.name]} (default: {default!r})".replace("%", "%%"),
        )


def sampling_config(args: argparse.Namespace) -> SamplingConfig:
    """The default config with every option given on the command line applied (and validated)."""
    changes = {
        f.name: getattr(args, f.name) for f in fields(SamplingConfig) if getattr(args, f.name) is not None
    }
    return SamplingConfig().with_changes(**changes)


def run_sample(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise ValueError("--n must be at least 1")
    if args.greedy and args.best_of != 1:
        raise ValueError("--best-of needs sampling: greedy decoding gives the same candidate every time")
    config = sampling_config(args)
    loaded = load_checkpoint(args.checkpoint, device=resolve_device(args.device))
    generator = CharGenerator(loaded.model, loaded.vocab)
    seeds = [loaded.vocab.prepare_seed(seed, args.unknown) for seed in args.seeds]
    rows = [seed for seed in seeds for _ in range(args.n)]
    if args.best_of != 1:
        results = complete_best_of(generator, rows, args.best_of, config, args.seed_rng, args.max_chars)
        done_rows = [r.best for r in results]
    else:
        decoder = GreedyDecoder() if args.greedy else SamplingDecoder(loaded.vocab, config, args.seed_rng)
        done_rows = generator.complete(rows, max_chars=args.max_chars, decoder=decoder)
    for done in done_rows:
        if args.jsonl:
            print(json.dumps({"seed": done.seed, "text": done.text, "stopped": done.stopped}))
        else:
            print(done.text if done.stopped == "end" else f"{done.text}  [{done.stopped}]")


def run_info(args: argparse.Namespace) -> None:
    loaded = load_checkpoint(args.path)
    config = loaded.model.config
    print(f"file: {args.path}")
    print(f"parameters: {loaded.model.num_parameters():,}")
    print(f"vocabulary: {len(loaded.vocab)} ids ({len(loaded.vocab.chars)} characters)")
    for key, value in config.to_dict().items():
        print(f"config.{key}: {value}")
    for key, value in sorted(loaded.metadata.items()):
        if key != "voice":
            print(f"{key}: {value}")
    voice = loaded.vocab.voice
    if voice is not None:  # the lexicon is thousands of words: its size, not its text
        words = len(voice.lexicon) if voice.lexicon is not None else 0
        bins = len(voice.calibration.edges) if voice.calibration is not None else 0
        print(f"voice: lexicon of {words:,} words, length calibration of {bins} bins, {voice.info}")
        if voice.phrasing is not None:
            pairs, triples = len(voice.phrasing.bigram), len(voice.phrasing.trigram)
            print(f"phrasing: {pairs:,} word pairs and {triples:,} word triples of the training quotes")
        if voice.copy_guard is not None:
            windows = len(voice.copy_guard.hashes)
            print(f"no-copy guard: {windows:,} windows of {voice.copy_guard.window} characters")
        if voice.quote_ends:
            print(f"quotes end after: {' '.join(voice.quote_ends)}")
        if voice.capitals is not None:
            capitals = voice.capitals.lexicon.words
            shown = " ".join(capitals[:12]) + (" ..." if len(capitals) > 12 else "")
            print(f"capitalized mid-sentence: {len(capitals):,} words ({shown})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sample":
            run_sample(args)
        else:
            run_info(args)
    except (CheckpointError, DeviceError, UnknownCharactersError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
