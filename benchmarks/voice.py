"""The voice benchmark: our model against a word Markov chain on one character's corpus.

    python benchmarks/voice.py --checkpoint data/models/default.pt \\
        --corpus ../shared/data/tinyshakespeare.txt --format play --speaker GLOUCESTER --out runs/voice-glo
    python benchmarks/voice.py --train-minutes 15 --corpus data/sample_quotes.txt --out runs/voice-pat
    python benchmarks/voice.py --finetune-minutes 15 --corpus ... --speaker MENENIUS --out runs/voice-men
    python benchmarks/voice.py --score VERDICTS.json --key runs/voice-glo/key.json

``--train-minutes`` / ``--finetune-minutes`` train the model first, with the README's commands
(``python -m training train`` / ``finetune --from`` the bundled model). Seeds: the first word of each
validation quote, in corpus order (``--seeds`` of them); ``--k`` quotes per seed from each generator:
ours with the default ``SamplingConfig`` (and any ``--mode LABEL:knob=value,...`` rows), and
``markovify.NewlineText`` (state size 2, one quote a line) with ``make_sentence_with_start`` (strict=False);
with ``--markov-no-copy`` it keeps only quotes that copy no 30 characters (ours' rule), a fairer rival.
Columns: see ``benchmarks/voice_metrics.py``. Blind pairs (ours and Markov for the same seed and k, sides
shuffled) go to ``OUT/pairs.json``, which side is which to ``OUT/key.json``: a judge reads only the pairs and
writes ``{"judge": "...", "verdicts": {"p001": {"in_character": "A|B|tie", "fluent": "A|B|tie",
"misspelled": ["A"]}}}``; ``--score`` prints the preference table.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.quality import parse_mode  # noqa: E402
from benchmarks.voice_metrics import (  # noqa: E402
    CopyIndex,
    KnownWords,
    Row,
    format_table,
    measure,
    misspelled_words,
)
from model.best_of import complete_best_of  # noqa: E402
from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from model.generate import Generator  # noqa: E402
from model.sampling import SamplingConfig, SamplingDecoder, derive_seed  # noqa: E402
from training.corpus import load_quotes, split_quotes  # noqa: E402
from training.loops import is_loop  # noqa: E402

QUESTIONS = ("in_character", "fluent")
RECOMMENDED_FINETUNE = ["--lr", "1e-3", "--replay-share", "0.1", "--eval-every", "100"]  # the Quick start's
NO_COPY_DRAWS = 50  # ``--markov-no-copy``: draws per row before the row counts as "found none"
INSTRUCTIONS = (
    "Each pair holds two quotes that start with the same seed. For each pair say which quote sounds more "
    "like the character (in_character: A, B or tie), which reads more fluently (fluent: A, B or tie), "
    "and which hold a misspelled or invented word (misspelled: a list, maybe empty)."
)


def voice_seeds(val_quotes: Sequence[str], count: int) -> list[str]:
    """The first word of each validation quote, in order, as many as asked (repeats allowed)."""
    seeds = [q.split(" ")[0] for q in val_quotes if q.split(" ")[0]]
    return seeds[:count]


def markov_quotes(
    train: Sequence[str],
    seeds: Sequence[str],
    k: int,
    rng_seed: int,
    copies: Callable[[str], bool] | None = None,
) -> list[str | None]:
    """K Markov quotes per seed (seed-major), ``None`` where the chain found none.

    ``copies``: keep only quotes it rejects (up to ``NO_COPY_DRAWS`` draws a row), so that the baseline
    is held to our copy rule: a Markov bot that may not recite the character's lines.
    """
    import markovify  # a dev/benchmark dependency

    chain = markovify.NewlineText("\n".join(train), state_size=2, well_formed=False)
    out: list[str | None] = []
    for i, seed in enumerate(seeds):
        for j in range(k):
            random.seed(derive_seed(rng_seed, i * k + j))
            found = None
            for _ in range(NO_COPY_DRAWS if copies else 1):
                try:
                    found = chain.make_sentence_with_start(seed, strict=False, tries=100)
                except (KeyError, markovify.text.ParamError):
                    found = None
                    break
                if found is not None and copies is not None and copies(found):
                    found = None
                    continue
                break
            out.append(found)
    return out


def our_quotes(
    generator: Generator,
    seeds: Sequence[str],
    k: int,
    config: SamplingConfig,
    cap: int,
    rng_seed: int,
    best_of: int = 1,
) -> tuple[list[str], list[bool]]:
    """K quotes per seed (seed-major) with ``config``; and whether each looped (training/loops.py)."""
    rows = [seed for seed in seeds for _ in range(k)]
    if best_of > 1:  # each quote the best of ``best_of`` candidates (model/best_of.py)
        picks = [p.best for p in complete_best_of(generator, rows, best_of, config, rng_seed, cap)]
        return [d.text for d in picks], [is_loop(d) for d in picks]
    decoder = SamplingDecoder(generator.vocab, config, [derive_seed(rng_seed, r) for r in range(len(rows))])
    done = generator.complete(rows, cap, decoder)
    return [d.text for d in done], [is_loop(d) for d in done]


def write_pairs(
    out: Path,
    seeds: Sequence[str],
    ours: Sequence[str],
    markov: Sequence[str | None],
    meta: dict,
    rng_seed: int,
    limit: int | None = None,
) -> int:
    """Blind pairs to ``out/pairs.json`` and the key to ``out/key.json``; returns the number of pairs.

    Rows are taken round-robin over the seeds (every seed's first quote, then every seed's second...),
    skipping rows where Markov found nothing, up to ``limit`` pairs.
    """
    rng = random.Random(rng_seed)
    k = len(ours) // len(seeds)
    pairs, key = [], {}
    for r in sorted(range(len(ours)), key=lambda row: (row % k, row // k)):
        mine, theirs = ours[r], markov[r]
        if theirs is None or (limit is not None and len(pairs) >= limit):
            continue
        pid = f"p{len(pairs) + 1:03d}"
        sides = [("ours", mine), ("markov", theirs)]
        rng.shuffle(sides)
        pairs.append({"id": pid, "seed": seeds[r // k], "A": sides[0][1], "B": sides[1][1]})
        key[pid] = {"A": sides[0][0], "B": sides[1][0]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.json").write_text(
        json.dumps({**meta, "instructions": INSTRUCTIONS, "pairs": pairs}, indent=1)
    )
    (out / "key.json").write_text(json.dumps(key, indent=1))
    return len(pairs)


def score(verdicts_path: Path, key_path: Path) -> dict:
    """The preference table of a judge's verdicts, printed; returns the counts."""
    verdicts = json.loads(verdicts_path.read_text())
    key = json.loads(key_path.read_text())
    counts = {q: {"ours": 0, "markov": 0, "tie": 0} for q in QUESTIONS}
    flagged = {"ours": 0, "markov": 0}
    judged = 0
    for pid, answer in verdicts["verdicts"].items():
        if pid not in key:
            raise ValueError(f"{verdicts_path}: pair {pid!r} is not in the key")
        judged += 1
        for q in QUESTIONS:
            choice = answer.get(q, "tie")
            counts[q][key[pid][choice] if choice in ("A", "B") else "tie"] += 1
        for side in answer.get("misspelled", []):
            flagged[key[pid][side]] += 1
    print(f"judge: {verdicts.get('judge', 'unnamed')}; {judged} pairs of {len(key)}\n")
    print("| question | ours preferred | Markov preferred | tie |\n|---|--:|--:|--:|")
    for q in QUESTIONS:
        c = counts[q]
        print(
            f"| {q.replace('_', ' ')} | "
            + " | ".join(f"{c[s]} ({c[s] / max(1, judged):.0%})" for s in c)
            + " |"
        )
    share = {side: flagged[side] / max(1, judged) for side in flagged}
    print(f"| has a misspelled word | {share['ours']:.0%} | {share['markov']:.0%} | |")
    return {"judged": judged, **counts, "misspelled": flagged}


def train_first(args: argparse.Namespace) -> Path:
    """Train (or fine-tune the bundled model) with the README's command; returns the checkpoint."""
    out = Path(args.out) / "model.pt"
    corpus = ["--corpus", args.corpus] + (["--format", args.format] if args.format else [])
    corpus += ["--speaker", args.speaker] if args.speaker else []
    if args.train_minutes:
        command = ["train", *corpus, "--minutes", str(args.train_minutes)]
    else:
        command = ["finetune", "--from", str(DEFAULT_CHECKPOINT), *corpus, *RECOMMENDED_FINETUNE]
        command += ["--minutes", str(args.finetune_minutes)]
    command = [
        sys.executable,
        "-m",
        "training",
        *command,
        "--threads",
        "1",
        "--progress",
        "none",
        "--out",
        str(out),
    ]
    print("training:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=REPO)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--train-minutes", type=float, default=None, help="train from scratch first")
    parser.add_argument(
        "--finetune-minutes", type=float, default=None, help="fine-tune the bundled model first"
    )
    parser.add_argument("--corpus", default=None, help="the character's quotes (default: the checkpoint's)")
    parser.add_argument("--format", default=None)
    parser.add_argument("--speaker", default=None, help="one speaker of a play")
    parser.add_argument("--seeds", type=int, default=25, help="seeds: first words of validation quotes")
    parser.add_argument("--k", type=int, default=8, help="quotes per seed from each generator")
    parser.add_argument(
        "--best-of", type=int, default=1, help="each of ours the best of N (model/best_of.py)"
    )
    parser.add_argument("--pairs", type=int, default=40, help="most blind pairs written")
    parser.add_argument(
        "--pairs-from", default=None, help="the --mode LABEL whose quotes are paired (default: ours)"
    )
    parser.add_argument("--mode", action="append", default=[], help="extra row of ours: LABEL:knob=value,...")
    parser.add_argument(
        "--markov-no-copy",
        action="store_true",
        help="the Markov baseline keeps only quotes that copy no 30 characters (its row and the pairs)",
    )
    parser.add_argument("--max-chars", type=int, default=1100, help="length cap (the bot's MAX_QUOTE_CHARS)")
    parser.add_argument("--rng-seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for pairs.json, key.json and quotes.json")
    parser.add_argument("--show", type=int, default=3, help="print this many quotes of each generator")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--score", type=Path, default=None, help="a judge's VERDICTS.json (with --key)")
    parser.add_argument("--key", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> list[Row] | dict:
    args = build_parser().parse_args(argv)
    labels = [parse_mode(m)[0] for m in args.mode]
    if args.pairs_from is not None and args.pairs_from not in labels:
        raise SystemExit(f"--pairs-from {args.pairs_from!r} is none of the --mode labels: {labels}")
    if args.score:
        if not args.key:
            raise SystemExit("error: --score needs --key KEY.json")
        return score(args.score, args.key)
    torch.set_num_threads(args.threads)
    if (args.train_minutes or args.finetune_minutes) and not (args.corpus and args.out):
        raise SystemExit("error: training first needs --corpus and --out")
    checkpoint = train_first(args) if args.train_minutes or args.finetune_minutes else args.checkpoint
    loaded = load_checkpoint(checkpoint or DEFAULT_CHECKPOINT)
    meta = loaded.metadata
    corpus = args.corpus or str(REPO / meta["corpus"])
    speaker = args.speaker if args.corpus else meta.get("corpus_speaker")
    fmt = args.format if args.corpus else meta.get("corpus_format")
    train, val = split_quotes(load_quotes(corpus, fmt, speaker=speaker), meta.get("val_fraction", 0.1))
    seeds = [s for s in voice_seeds(val, args.seeds) if not loaded.vocab.missing(s)]
    cap = args.max_chars
    known, copy_index = KnownWords(train), CopyIndex(train)
    print(
        f"model: {checkpoint or DEFAULT_CHECKPOINT}; corpus: {corpus} {speaker or ''} ({len(train)} train"
        f" / {len(val)} validation); {len(seeds)} seeds x {args.k}; cap {cap}"
    )
    rows_seeds = [s for s in seeds for _ in range(args.k)]
    train_lengths = [len(q) for q in train]
    generator = Generator(loaded.model, loaded.vocab)
    rows, texts = [], {}
    first = "ours (default)" if args.best_of == 1 else f"ours (default, best of {args.best_of})"
    for label, config in [(first, SamplingConfig()), *(parse_mode(m) for m in args.mode)]:
        quotes, looped = our_quotes(generator, seeds, args.k, config, cap, args.rng_seed, args.best_of)
        rows.append(measure(label, quotes, rows_seeds, copy_index, val, known, looped, train_lengths))
        texts[label] = quotes
    markov = markov_quotes(
        train, seeds, args.k, args.rng_seed, copy_index.copies if args.markov_no_copy else None
    )
    kept = [(s, m) for s, m in zip(rows_seeds, markov, strict=True) if m]
    if kept:
        rows.append(
            measure(
                "Markov (state 2, no copy 30+)" if args.markov_no_copy else "Markov (state 2)",
                [m for _, m in kept],
                [s for s, _ in kept],
                copy_index,
                val,
                known,
                None,
                train_lengths,
            )
        )
    print(f"Markov found no quote for {len(markov) - len(kept)} of {len(markov)} rows\n")
    print(format_table(rows, float(np.median([len(q) for q in val]))))
    floor = measure("train split itself", train, [""] * len(train), copy_index, val, known)
    print(
        f"\nnoise floor, the training quotes' own lengths against the validation quotes': median ratio "
        f"{floor.median_ratio:.2f}, p10 {floor.p10_ratio:.2f}, p90 {floor.p90_ratio:.2f}, KS {floor.ks:.2f}"
    )
    ours = texts[args.pairs_from or first]
    shown = (("ours", rows_seeds, ours), ("Markov", [s for s, _ in kept], [m for _, m in kept]))
    for label, row_seeds, quotes in shown:
        print(f"\n{label}, first quotes:", *(f"  {q}" for q in quotes[: args.show]), sep="\n")
        print(f"  misspelled words: {misspelled_words(quotes, row_seeds, known)[:20]}")
    if args.out:
        pair_meta = {"character": speaker or Path(corpus).stem, "examples": train[:8]}
        n = write_pairs(Path(args.out), seeds, ours, markov, pair_meta, args.rng_seed, args.pairs)
        everything = {"seeds": seeds, **texts, "markov": markov}
        (Path(args.out) / "quotes.json").write_text(json.dumps(everything, indent=1))
        print(f"\n{n} blind pairs in {args.out}/pairs.json (the key in key.json: not for the judge)")
    return rows


if __name__ == "__main__":
    main()
