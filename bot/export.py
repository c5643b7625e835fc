"""``python -m bot export``: the bot's favoured and admin-added quotes as a JSON-lines file.

    python -m bot export --db quotebot.db --out favoured.jsonl
    python -m bot export --db quotebot.db --guild 1234 --min-votes 2 --out guild.jsonl

One JSON object a line, favoured quotes first (most votes first), then source quotes:
``{"text", "kind" ("favoured" | "source"), "guild", "votes", "seed", "model_version"}``; ``votes``, ``seed``
and ``model_version`` are null for source quotes, and ``seed`` is null once its requester asked to be
forgotten. The file is ready for ``python -m training finetune --corpus FILE.jsonl`` and for other tools.
The database is opened read-only (the bot may keep running), and the output appears whole or not at all.
"""

from __future__ import annotations

import argparse
import sys

from bot.storage.records import StoreError
from bot.storage.training_data import export_jsonl


def build_parser() -> argparse.ArgumentParser:
    export = argparse.ArgumentParser(
        prog="python -m bot export", description="favoured and source quotes of the bot's database, as JSONL"
    )
    export.add_argument("--db", required=True, help="the bot's SQLite file (DB_PATH) or PostgreSQL URL")
    export.add_argument("--guild", type=int, default=None, help="only this server's quotes (default: all)")
    export.add_argument(
        "--min-votes", type=int, default=1, help="votes that make a quote favoured (default 1)"
    )
    export.add_argument("--out", required=True, help="the JSON-lines file to write")
    return export


def main(argv: list[str] | None = None) -> int:
    """Write the export; prints how many quotes went where, or one ``error:`` line (status 2)."""
    args = build_parser().parse_args(argv)
    try:
        count = export_jsonl(args.db, args.out, guild=args.guild, min_votes=args.min_votes)
    except (StoreError, OSError) as exc:  # StoreInputError (a bad filter or path) is a StoreError too
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} quotes to {args.out}")
    return 0
