"""Command line for training.

    python -m training train --corpus data/sample_quotes.txt --minutes 5 --out runs/pat.pt
    python -m training train --corpus path/to/tinyshakespeare.txt --format play \\
        --hidden 512 --layers 2 --minutes 50 --out data/models/default.pt
    python -m training evaluate --checkpoint runs/pat.pt --corpus data/sample_quotes.txt
    python -m training finetune --from data/models/default.pt --corpus guild.jsonl --out runs/guild.pt
    python -m training calibrate --checkpoint runs/pat.pt      # refit the lexicon and length calibration
    python -m training export ...     # the same as python -m bot export (the bot's database)
    torchrun --nproc_per_node 2 -m training train --corpus ... --out ...     # DistributedDataParallel

Installed, ``quotebot-train`` is the same command (``quotebot-train train --corpus ...``).

Errors (a bad corpus, a bad checkpoint, an impossible option) print one line starting with
``error:`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.checkpoint import CheckpointError
from model.device import DeviceError
from training.corpus import FORMATS, CorpusError
from training.options import add_corpus_options, add_replay_cache_options, add_train_options, add_voice_option


def build_parser() -> argparse.ArgumentParser:
    prog = "quotebot-train" if Path(sys.argv[0]).name == "quotebot-train" else "python -m training"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a new model (or --resume one)")
    add_corpus_options(train)
    size = train.add_argument_group("model size")
    size.add_argument("--hidden", type=int, default=256, help="LSTM hidden size")
    size.add_argument("--layers", type=int, default=2)
    size.add_argument("--embed", type=int, default=64, help="character embedding size")
    size.add_argument("--dropout", type=float, default=0.2)
    add_train_options(train, lr=2e-3)
    train.add_argument("--resume", default=None, help="continue the run whose checkpoint this is")

    evaluate = sub.add_parser("evaluate", help="bits per character of a checkpoint on a corpus")
    evaluate.add_argument("--checkpoint", default=None, help="model file (default: the bundled model)")
    add_corpus_options(evaluate, required=False)
    evaluate.add_argument("--whole", action="store_true", help="score every quote, not the validation split")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    finetune = sub.add_parser("finetune", help="continue a checkpoint on new quotes")
    finetune.add_argument("--from", dest="parent", required=True, help="checkpoint to start from")
    add_corpus_options(finetune)
    replay = finetune.add_argument_group("replay of the base text (training/base_text.py)")
    replay.add_argument("--replay-corpus", default=None, help="default: the corpus named in the checkpoint")
    replay.add_argument("--replay-format", choices=FORMATS, default=None)
    add_replay_cache_options(replay)
    replay.add_argument(
        "--base-margin", type=float, default=0.0,
        help="keep only checkpoints within this many nats/char of the parent on base text (0, the default:"
        " off, as a new character's voice is meant to leave the parent's; the bot's retrain sets it)",
    )  # fmt: skip
    replay.add_argument(
        "--replay-share", type=float, default=0.3, help="share of training quotes from replay"
    )
    add_train_options(finetune, lr=5e-4)
    # A few dozen quotes, a few hundred steps at most on a busy CPU: warm up briefly, validate often (the
    # drift guard and early stopping pick among these checkpoints).
    finetune.set_defaults(warmup_steps=10, eval_every=5, patience=10)

    calibrate = sub.add_parser("calibrate", help="refit a checkpoint's lexicon and length calibration")
    calibrate.add_argument("--checkpoint", required=True, help="model file to refit")
    calibrate.add_argument("--out", default=None, help="where to write it (default: in place)")
    calibrate.add_argument("--keep-lexicon", action="store_true", help="keep its lexicon's words")
    calibrate.add_argument(
        "--keep-calibration", action="store_true", help="keep its length calibration (no length fit)"
    )
    add_corpus_options(calibrate, required=False)
    add_voice_option(calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:  # an alias of the bot's own command; bot/ loads only when asked for
        from bot.export import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in the checkpoint
    from training import commands  # the heavy modules load only once the arguments are known good

    try:
        if args.command == "train":
            commands.run_train(args)
        elif args.command == "evaluate":
            commands.run_evaluate(args)
        elif args.command == "calibrate":
            from training.voice import run_calibrate

            run_calibrate(args)
        else:
            commands.run_finetune(args)
    except (CorpusError, CheckpointError, DeviceError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the best checkpoint so far is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
