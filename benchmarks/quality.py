"""Quality of decoding modes: loops, endings, repeats, copying, fluency and speed, one table row per mode.

    python benchmarks/quality.py                          # bundled model, its corpus's validation split
    python benchmarks/quality.py --quick --seeds 40       # a fast look
    python benchmarks/quality.py --checkpoint m.pt --corpus quotes.txt --format lines
    python benchmarks/quality.py --mode "dry2:dry_base=2.0" --mode "ng15:no_repeat_ngram=15"

Seeds: generic openers (``Hey,``, ``Are we back``, ``I``, ``The``, ...) and prefixes of 1-12 characters of
validation quotes. The corpus and its split default to the ones the checkpoint's metadata names. Rows:
greedy; temperature 1.0; temperature 0.8 + top-k 40; the default chain; best-of-4 with the default
chain; then any ``--mode LABEL:knob=value,...`` (the default chain with those knobs changed).

Columns (the whole quote is the seed plus what was generated; "generated" is only the latter):
  loop      share that hit the length cap without end-of-quote, were stopped by the loop guard, or contain
            a substring of 4+ characters repeated 3+ times in a row
  end       share that ended at end-of-quote
  rep16     seq-rep-16 of the generated text: 1 - unique/total character 16-grams, averaged
  dist2     distinct-2: unique/total word bigrams of the generated text, across all completions
  copy      share whose whole quote shares a substring of 40+ characters with one training quote
  logp      mean log-probability per generated character (end-of-quote included) under the model
  length    mean quote length in characters (the corpus's mean beside it in the header)
  words     share of generated words that occur in the training corpus
  chars/s   generated characters of the quotes kept, per second of wall time (best-of: 1 of 4 kept)
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.best_of import complete_best_of, repeated_ngram_share  # noqa: E402
from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from model.generate import STOP_END, Completion, Generator, GreedyDecoder  # noqa: E402
from model.sampling import SamplingConfig, SamplingDecoder, derive_seed  # noqa: E402
from training.cli_support import resolve_recorded  # noqa: E402
from training.corpus import load_quotes, split_quotes  # noqa: E402
from training.loops import LOOP, OPENERS, is_loop, make_seeds  # noqa: E402, F401 (one loop test: see training/loops.py)

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
COPY_LENGTH = 40
PLAIN = SamplingConfig(
    temperature=1.0,
    min_p=0.0,
    no_repeat_ngram=0,
    dry_multiplier=0.0,
    loop_repeats=0,
    lexicon=0,
    length_calibration=0,
)


# --- metrics --------------------------------------------------------------------------------------


def generated_words(done: Completion) -> list[str]:
    """Lower-cased words that end after the seed (a word the seed started counts whole)."""
    return [m.group().lower() for m in WORD.finditer(done.text) if m.end() > len(done.seed)]


def distinct_2(word_lists: Sequence[Sequence[str]]) -> float:
    """Unique/total word bigrams over all lists (bigrams never cross two lists); 0 when there are none."""
    bigrams = [pair for words in word_lists for pair in itertools.pairwise(words)]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


class CopyIndex:
    """Answers whether a text shares a substring of ``length``+ characters with any training quote."""

    def __init__(self, quotes: Sequence[str], length: int = COPY_LENGTH):
        self.length = length
        # Hashes of every window; a 64-bit collision costs at worst one false copy in the count.
        self.windows = {hash(q[i : i + length]) for q in quotes for i in range(len(q) - length + 1)}

    def copies(self, text: str) -> bool:
        n = self.length
        return any(hash(text[i : i + n]) in self.windows for i in range(len(text) - n + 1))


@dataclass
class Row:
    mode: str
    loop: float
    end: float
    rep16: float
    dist2: float
    copy: float
    logp: float
    length: float
    words: float
    chars_per_s: float


def measure(
    mode: str, done: list[Completion], seconds: float, copy_index: CopyIndex, vocab_words: set
) -> Row:
    """One table row from the completions one mode produced in ``seconds``."""
    n = len(done)
    logprobs = [lp for d in done for lp in d.logprobs]
    words = [generated_words(d) for d in done]
    all_words = [w for ws in words for w in ws]
    generated = sum(len(d.generated) for d in done)
    return Row(
        mode=mode,
        loop=sum(is_loop(d) for d in done) / n,
        end=sum(d.stopped == STOP_END for d in done) / n,
        rep16=sum(repeated_ngram_share(d.generated, 16) for d in done) / n,
        dist2=distinct_2(words),
        copy=sum(copy_index.copies(d.text) for d in done) / n,
        logp=sum(logprobs) / len(logprobs) if logprobs else 0.0,
        length=sum(len(d.text) for d in done) / n,
        words=sum(w in vocab_words for w in all_words) / len(all_words) if all_words else 0.0,
        chars_per_s=generated / seconds if seconds > 0 else 0.0,
    )


# --- seeds, modes, corpus -----------------------------------------------------------------------


def parse_mode(text: str) -> tuple[str, SamplingConfig]:
    """``"label:knob=value,knob=value"`` -> the default chain with those knobs changed."""
    label, _, spec = text.partition(":")
    defaults = SamplingConfig()
    changes: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not hasattr(defaults, key):
            raise ValueError(f"--mode {text!r}: unknown sampling option {key!r}")
        changes[key] = type(getattr(defaults, key))(value.strip())
    return label.strip() or text, defaults.with_changes(**changes)


def corpus_split(args: argparse.Namespace, metadata: dict) -> tuple[list[str], list[str], str]:
    """(train, validation, description), from the options or else the checkpoint's metadata."""
    path = args.corpus or metadata.get("corpus")
    if not path:
        raise SystemExit("error: the checkpoint names no corpus; pass --corpus PATH (and --format)")
    path = (Path(path) if args.corpus else resolve_recorded(path)).resolve()
    fmt = args.format or (None if args.corpus else metadata.get("corpus_format"))
    speaker = args.speaker or (None if args.corpus else metadata.get("corpus_speaker"))
    fraction = args.val_fraction if args.val_fraction is not None else metadata.get("val_fraction", 0.1)
    quotes = load_quotes(path, fmt, speaker=speaker)
    train, val = split_quotes(quotes, fraction)
    return (
        train,
        val,
        f"{path} ({fmt or 'guessed format'}), {len(train)} train / {len(val)} validation quotes",
    )


def default_cap(quotes: Sequence[str]) -> int:
    """The corpus's 99th-percentile quote length, rounded up to a multiple of 50."""
    lengths = sorted(len(q) for q in quotes)
    p99 = lengths[min(len(lengths) - 1, math.ceil(0.99 * len(lengths)) - 1)]
    return max(50, math.ceil(p99 / 50) * 50)


def describe(config: SamplingConfig) -> str:
    """The knobs of ``config`` on one line (the exempt characters left out)."""
    shown = {k: v for k, v in vars(config).items() if k != "penalty_exempt"}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; {torch.get_num_threads()} torch threads; torch {torch.__version__}"


# --- running ------------------------------------------------------------------------------------


def timed(run: Callable[[], list[Completion]]) -> tuple[list[Completion], float]:
    start = time.perf_counter()
    done = run()
    return done, time.perf_counter() - start


def modes(
    generator: Generator, seeds: list[str], cap: int, rng: int, extra: list[tuple[str, SamplingConfig]]
):
    """(label, zero-argument run) for every decoding mode, in table order."""

    def sampled(config: SamplingConfig) -> Callable[[], list[Completion]]:
        row_seeds = [derive_seed(rng, r) for r in range(len(seeds))]
        return lambda: generator.complete(seeds, cap, SamplingDecoder(generator.vocab, config, row_seeds))

    def best_of_4() -> list[Completion]:
        return [r.best for r in complete_best_of(generator, seeds, 4, SamplingConfig(), rng, cap)]

    yield "greedy", lambda: generator.complete(seeds, cap, GreedyDecoder())
    yield "temperature 1.0", sampled(PLAIN)
    yield "temperature 0.8, top-k 40", sampled(PLAIN.with_changes(temperature=0.8, top_k=40))
    yield "default chain", sampled(SamplingConfig())
    yield "best-of-4, default chain", best_of_4
    for label, config in extra:
        yield label, sampled(config)


def format_table(rows: list[Row], corpus_length: float) -> str:
    head = (
        f"| mode | loop | end | rep16 | dist2 | copy | logp/char | length (corpus {corpus_length:.0f}) "
        "| words | chars/s |"
    )
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        lines.append(
            f"| {r.mode} | {r.loop:.1%} | {r.end:.1%} | {r.rep16:.3f} | {r.dist2:.3f} | {r.copy:.1%} "
            f"| {r.logp:.3f} | {r.length:.0f} | {r.words:.3f} | {r.chars_per_s:,.0f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--corpus", default=None, help="default: the corpus the checkpoint names")
    parser.add_argument(
        "--format", default=None, help="corpus format (default: the checkpoint's, or guessed)"
    )
    parser.add_argument("--speaker", default=None, help="one speaker of a play corpus")
    parser.add_argument("--val-fraction", type=float, default=None, help="default: the checkpoint's, or 0.1")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 200; --quick: 40)")
    parser.add_argument("--quick", action="store_true", help="40 seeds unless --seeds says otherwise")
    parser.add_argument("--max-chars", type=int, default=None, help="length cap (default: corpus p99)")
    parser.add_argument("--rng-seed", type=int, default=0, help="seeds the seed choice and every row's draws")
    parser.add_argument("--mode", action="append", default=[], help="extra row: LABEL:knob=value,...")
    parser.add_argument("--show", type=int, default=0, help="print this many completions of each mode")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    return parser


def main(argv: list[str] | None = None) -> list[Row]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = [parse_mode(m) for m in args.mode]
    loaded = load_checkpoint(args.checkpoint)
    train, val, described = corpus_split(args, loaded.metadata)
    count = args.seeds or (40 if args.quick else 200)
    seeds = make_seeds(val, count, loaded.vocab, args.rng_seed)
    cap = args.max_chars or default_cap(train + val)
    copy_index = CopyIndex(train)
    vocab_words = {w.lower() for q in train for w in WORD.findall(q)}
    corpus_length = sum(map(len, train)) / len(train)
    config = loaded.model.config
    print(f"machine: {machine()}")
    print(f"model: {args.checkpoint} ({config.num_layers}x{config.hidden_size} LSTM)")
    print(f"corpus: {described}; mean quote {corpus_length:.0f} characters")
    print(f"seeds: {len(seeds)}; length cap {cap} characters; default chain: {describe(SamplingConfig())}\n")
    generator = Generator(loaded.model, loaded.vocab)
    rows = []
    for label, run in modes(generator, seeds, cap, args.rng_seed, extra):
        done, seconds = timed(run)
        rows.append(measure(label, done, seconds, copy_index, vocab_words))
        for d in done[: args.show]:
            print(f"  [{label}] {d.text!r} ({d.stopped})")
    print(format_table(rows, corpus_length))
    return rows


if __name__ == "__main__":
    main()
