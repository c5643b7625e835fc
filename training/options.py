"""The command-line options that several training commands share (corpus, training budget).

Light on purpose: argparse only, so ``python -m training`` and ``python -m training.judge`` can build
their parsers before any torch module loads.
"""

from __future__ import annotations

import argparse

from training.corpus import FORMATS

REPLAY_SAMPLES = 2000  # a few thousand: about 200 held out for the judge, the rest to replay


def add_corpus_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus",
        "--db",
        required=required,
        help="file of quotes (--db: the bot's SQLite store, or its postgresql:// URL)",
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


def add_replay_cache_options(group: argparse._ActionsContainer) -> None:
    """Where the parent's samples are cached and how many, when its base corpus is not here."""
    group.add_argument("--replay-cache", default=None, help="default: NAME.replay.jsonl beside the model")
    group.add_argument(
        "--replay-samples", type=int, default=REPLAY_SAMPLES, help="drawn when the base corpus is not here"
    )
