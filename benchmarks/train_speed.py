"""Naive char-rnn training loop against ours: same data, same model size, same wall-clock budget.

    python benchmarks/train_speed.py                                  # tinyshakespeare speeches, 3 min each
    python benchmarks/train_speed.py --minutes 1 --hidden 128 --corpus data/sample_quotes.txt

(a) naive: the training quotes concatenated into one stream (``<bos> quote <eos> <bos> ...``, so the
    model can learn the same tokens), windows of 100 characters taken every 50, random batches of
    windows, each started from a zero state; Adam at a constant learning rate; its own validation is
    the mean loss over windows of the validation stream with dropout left on (model in train mode).
(b) ours: ``training.trainer`` (whole quotes from ``<bos>``, length buckets, carried state, AdamW,
    warm-up + cosine over the budget), validating only at the end.

Both models are then scored the same way, the way generation uses them: every validation quote from
its ``<bos>``, eval mode, nats and bits per character. Characters per second count predicted positions
(padding excluded). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.bundled import SAMPLE_CORPUS
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab
from training.batching import encode_quotes
from training.corpus import load_quotes, split_quotes
from training.scoring import LN2, masked_nll, score_quotes
from training.trainer import TrainSettings, train_model

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
WINDOW, STEP = 100, 50


def windows(stream: list[int]) -> torch.Tensor:
    """Every window of ``WINDOW + 1`` ids starting at a multiple of ``STEP``, [n, WINDOW + 1]."""
    starts = range(0, len(stream) - WINDOW - 1, STEP)
    return torch.tensor([stream[s : s + WINDOW + 1] for s in starts], dtype=torch.long)


def naive_train(model: CharLSTM, train_stream: list[int], seconds: float, batch: int, lr: float) -> dict:
    """The classic loop: random windows, zero state every batch, constant-rate Adam, clip 5."""
    data = windows(train_stream)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    steps, chars, started = 0, 0, time.monotonic()
    while time.monotonic() - started < seconds:
        rows = data[torch.randint(0, len(data), (batch,))]
        logits, _ = model(rows[:, :-1])  # a fresh zero state: the window's start has no context
        loss = masked_nll(logits, rows[:, 1:]) / rows[:, 1:].numel()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        steps, chars = steps + 1, chars + rows[:, 1:].numel()
    spent = time.monotonic() - started
    return {"steps": steps, "chars_per_s": chars / spent, "seconds": spent}


@torch.no_grad()
def naive_validation(model: CharLSTM, val_stream: list[int], batch: int = 64) -> float:
    """The naive loop's own report: mean window loss with dropout still on (train mode)."""
    model.train()
    data = windows(val_stream)
    nll, count = 0.0, 0
    for start in range(0, len(data), batch):
        rows = data[start : start + batch]
        logits, _ = model(rows[:, :-1])
        nll += float(masked_nll(logits, rows[:, 1:]))
        count += rows[:, 1:].numel()
    model.eval()
    return nll / max(1, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = SHAKESPEARE if SHAKESPEARE.is_file() else SAMPLE_CORPUS
    parser.add_argument("--corpus", default=str(default))
    parser.add_argument("--format", default=None)
    parser.add_argument("--speaker", default=None)
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget of each loop")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    quotes = load_quotes(args.corpus, args.format, speaker=args.speaker)
    train, val = split_quotes(quotes, 0.1)
    vocab = Vocab.from_texts(quotes)
    train_ids, val_ids = encode_quotes(train, vocab), encode_quotes(val, vocab)
    shuffled = random.Random(args.seed).sample(train_ids, len(train_ids))
    train_stream = [i for ids in shuffled for i in ids]
    val_stream = [i for ids in val_ids for i in ids]
    config = ModelConfig(len(vocab), 64, args.hidden, args.layers, args.dropout)
    seconds = args.minutes * 60.0
    print(
        f"corpus {args.corpus}: {len(train)} train / {len(val)} validation quotes; "
        f"model 2x{args.hidden} ({CharLSTM(config).num_parameters():,} parameters); "
        f"{args.minutes:g} min each on {torch.get_num_threads()} threads",
        file=sys.stderr,
    )

    torch.manual_seed(args.seed)
    naive = CharLSTM(config)
    run = naive_train(naive, train_stream, seconds, args.batch_size, args.lr)
    naive_report = naive_validation(naive, val_stream)
    naive_true = score_quotes(naive, val_ids)

    torch.manual_seed(args.seed)
    ours = CharLSTM(config)
    settings = TrainSettings(
        minutes=args.minutes, batch_size=args.batch_size, lr=args.lr, eval_every=10**9, progress="none"
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        result = train_model(ours, vocab, train_ids, val_ids, settings, Path(tmp) / "ours.pt")
        spent = time.monotonic() - started
    ours_true = score_quotes(ours, val_ids)

    print("| loop | chars/s | steps | its own validation (nats) | val, whole quotes from <bos> | bits/char |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| naive: windows 100/50, zero state, dropout on at eval | {run['chars_per_s']:,.0f} "
        f"| {run['steps']:,} "
        f"| {naive_report:.3f} | {naive_true.nats:.3f} | {naive_true.nats / LN2:.3f} |"
    )
    ours_rate = result.chars / max(1e-9, result.seconds)
    print(
        f"| ours: whole quotes, length buckets, carried state | {ours_rate:,.0f} | {result.steps:,} "
        f"| {result.best_nats:.3f} | {ours_true.nats:.3f} | {ours_true.nats / LN2:.3f} |"
    )
    print(
        f"(wall clock: naive {run['seconds']:.0f} s, ours {spent:.0f} s incl. final validation)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
