"""Command line for training.

    python -m training train --corpus data/sample_quotes.txt --minutes 5 --out runs/pat.pt
    python -m training train --corpus ../shared/data/tinyshakespeare.txt --format play \\
        --hidden 512 --layers 2 --minutes 50 --out data/models/default.pt
    python -m training evaluate --checkpoint runs/pat.pt --corpus data/sample_quotes.txt
    python -m training finetune --from data/models/default.pt --corpus guild.jsonl --out runs/guild.pt
    python -m training calibrate --checkpoint runs/pat.pt      # refit the lexicon and length calibration
    python -m training export --db quotebot.db [--guild ID] [--min-votes N] --out favoured.jsonl
    torchrun --nproc_per_node 2 -m training train --corpus ... --out ...     # DistributedDataParallel

Errors (a bad corpus, a bad checkpoint, an impossible option) print one line starting with
``error:`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from model.checkpoint import CheckpointError
from model.device import DeviceError
from training.corpus import FORMATS, CorpusError
from training.export import add_export_parser, run_export


def add_corpus_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus", "--db", required=required, help="file of quotes (--db: the bot's SQLite store)"
    )
    group.add_argument("--format", choices=FORMATS, default=None, help="default: guessed from the file")
    group.add_argument("--blocks", action="store_true", help="text file: quotes separated by blank lines")
    group.add_argument("--speaker", default=None, help="play: only this speaker's speeches")
    group.add_argument("--column", default="text", help="csv/jsonl: the column holding the quote")
    group.add_argument(
        "--where", action="append", default=None, metavar="COLUMN=VALUE", help="csv/jsonl: keep matching rows"
    )
    group.add_argument(
        "--guild-id", "--guild", type=int, default=None, help="sqlite: only this guild's quotes"
    )
    group.add_argument("--min-votes", type=int, default=1, help="sqlite: votes that make a quote favoured")
    group.add_argument("--val-fraction", type=float, default=0.1, help="share of quotes held out (by hash)")


def add_train_options(parser: argparse.ArgumentParser, lr: float) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--out", required=True, help="where the best checkpoint goes")
    group.add_argument("--minutes", type=float, default=None, help="time budget")
    group.add_argument("--epochs", type=float, default=None, help="epoch budget")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--batch-size", type=int, default=64)
    group.add_argument("--chunk-len", type=int, default=256, help="characters per backprop chunk")
    group.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    group.add_argument("--min-lr-ratio", type=float, default=0.05, help="final learning rate / peak")
    group.add_argument("--warmup-steps", type=int, default=100)
    group.add_argument("--weight-decay", type=float, default=0.01)
    group.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    group.add_argument("--eval-every", type=int, default=200, help="steps between validations")
    group.add_argument("--patience", type=int, default=5, help="validations without gain before stopping")
    group.add_argument("--progress", choices=("bar", "jsonl", "none"), default="bar")
    group.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    group.add_argument("--keep-rank-weights", action="store_true", help=argparse.SUPPRESS)
    add_voice_option(group)


def add_voice_option(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--voice-samples",
        type=int,
        default=256,
        help="quotes sampled per round to fit the end-of-quote calibration after training (0 = none)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
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
    replay = finetune.add_argument_group("replay of the original corpus")
    replay.add_argument("--replay-corpus", default=None, help="default: the corpus named in the checkpoint")
    replay.add_argument("--replay-format", choices=FORMATS, default=None)
    replay.add_argument(
        "--replay-share", type=float, default=0.3, help="share of training quotes from replay"
    )
    add_train_options(finetune, lr=5e-4)

    calibrate = sub.add_parser("calibrate", help="refit a checkpoint's lexicon and length calibration")
    calibrate.add_argument("--checkpoint", required=True, help="model file to refit")
    calibrate.add_argument("--out", default=None, help="where to write it (default: in place)")
    calibrate.add_argument("--keep-lexicon", action="store_true", help="keep its lexicon's words")
    add_corpus_options(calibrate, required=False)
    add_voice_option(calibrate)
    add_export_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in the checkpoint
    if args.command == "export":
        return run_export(args)
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
