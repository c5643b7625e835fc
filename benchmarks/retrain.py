"""Does a retrain move the voice? The bundled model fine-tuned on a new character, as ``!retrain`` does it.

    nice -n 10 python benchmarks/retrain.py                                  # the defaults of a retrain
    nice -n 10 python benchmarks/retrain.py --minutes 3 --base-corpus ../shared/data/tinyshakespeare.txt

Runs exactly the two children a ``!retrain`` runs (``python -m training finetune`` with the bot's
budget, one thread, then ``python -m training.judge``), on ``data/server_quotes.txt``: 32 lines of a
game streamer (digits, emoji, an accent or two, nothing like Shakespeare), written for this project.
The bundled model's base corpus is not in the repository, so the run replays and is judged on the
model's own samples, as on a fresh clone. With ``--base-corpus`` the judge also scores both models on
that corpus's held-out speeches. Prints one markdown table (the README's retrain table) and a few
samples of the new model; ``--json`` writes every figure to a file too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.retrain.retrainer import GUARD_SHARE  # noqa: E402
from bot.settings import Settings  # noqa: E402  (the bot's defaults: the budget a retrain gets)
from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from model.generate import Generator  # noqa: E402
from model.sampling import SamplingConfig, SamplingDecoder  # noqa: E402

SERVER_QUOTES = REPO / "data" / "server_quotes.txt"


def run_child(argv: list[str]) -> tuple[float, list[dict]]:
    """Run one training child; (seconds, the JSON lines it printed)."""
    started = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    seconds = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return seconds, events


def judge(args: argparse.Namespace, candidate: Path, cache: Path, base_corpus: str | None) -> dict:
    argv = [sys.executable, "-m", "training.judge", "--candidate", str(candidate), "--current", args.model]
    argv += ["--corpus", str(args.corpus), "--replay-cache", str(cache), "--threads", "1", "--json"]
    argv += ["--replay-samples", str(args.replay_samples)]
    argv += [
        "--margin",
        str(Settings().retrain_score_margin),
        "--loop-target",
        str(Settings().retrain_loop_target),
    ]
    argv += ["--base-corpus", base_corpus] if base_corpus else []
    _, events = run_child(argv)
    return next(e for e in events if e.get("event") == "judged")


def samples(candidate: Path, n: int) -> list[str]:
    loaded = load_checkpoint(candidate)
    done = Generator(loaded.model, loaded.vocab).complete(
        [""] * n, 300, SamplingDecoder(loaded.vocab, SamplingConfig(), 7)
    )
    return [d.text for d in done]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--corpus", default=str(SERVER_QUOTES))
    parser.add_argument("--minutes", type=float, default=Settings().retrain_minutes)
    parser.add_argument("--replay-samples", type=int, default=Settings().retrain_replay_samples)
    parser.add_argument(
        "--base-corpus", default=None, help="also score on this corpus (e.g. tinyshakespeare)"
    )
    parser.add_argument("--work", default=None, help="folder for the candidate and the samples cache")
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument("--finetune-args", default="", help="extra finetune options (experiments)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="retrain-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache, candidate = work / "bundled.replay.jsonl", work / "candidate.pt"
    finetune = [sys.executable, "-m", "training", "finetune", "--from", args.model, "--corpus", args.corpus]
    finetune += ["--out", str(candidate), "--minutes", f"{args.minutes:g}", "--threads", "1"]
    finetune += ["--progress", "jsonl", "--seed", "1", "--replay-cache", str(cache)]
    finetune += ["--replay-samples", str(args.replay_samples)]
    finetune += [
        "--base-margin",
        f"{Settings().retrain_score_margin * GUARD_SHARE:g}",
        *args.finetune_args.split(),
    ]
    seconds, events = run_child(finetune)
    for event in events:
        if event.get("event") == "info":
            print(" ", event["message"], file=sys.stderr)
    started = time.time()
    figures = judge(args, candidate, cache, None)
    judge_s = time.time() - started
    corpus_figures = judge(args, candidate, cache, args.base_corpus) if args.base_corpus else {}
    meta = load_checkpoint(candidate).metadata
    row = {
        "minutes_budget": args.minutes, "finetune_minutes": seconds / 60, "judge_minutes": judge_s / 60,
        "steps": meta.get("steps"), **{k: v for k, v in figures.items() if k != "event"},
        **{f"corpus_{k}": v for k, v in corpus_figures.items() if k.startswith("base_")},
    }  # fmt: skip
    head = "| base text | server nats before | after | base nats before | after | promoted | finetune min |"
    print(head + " judge min |")
    print("|---|--:|--:|--:|--:|---|--:|--:|")
    lines = [(figures, "the model's own samples")]
    if corpus_figures:
        lines.append((corpus_figures, "tinyshakespeare, held-out speeches"))
    for got, name in lines:
        print(
            f"| {name} | {got['guild_current_nats']:.3f} | {got['guild_candidate_nats']:.3f} | "
            f"{got['base_current_nats']:.3f} | {got['base_candidate_nats']:.3f} | "
            f"{'yes' if got['promote'] else 'no'} | {seconds / 60:.1f} | {judge_s / 60:.1f} |"
        )
    print("reasons:", "; ".join(figures["reasons"]))
    written = samples(candidate, 8)
    row["samples"] = written
    for text in written:
        print("  >", text)
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
