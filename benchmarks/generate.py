"""Generation speed: naive decoders against ours, the bot's model host under load, and the step's FLOP/s.

    python benchmarks/generate.py                      # bundled model, lengths 100 and 300: about a minute
    python benchmarks/generate.py --checkpoint m.pt --lengths 100 --repeats 1 --device cuda

Rows, all on the same model in one run, every quote forced to exactly the given length (end-of-quote
masked) so that every row does the same work:
  (a) naive re-run: for every new character, run the whole text so far from a zero state (n^2 work)
  (b) naive carried state, batch 1: feed one character at a time through nn.LSTM, carrying (h, c)
  (c) our Generator, batch 1 (packed priming, the step path chosen by CharLSTM.step), plain sampling
  (c+) the same with the bot's whole sampling chain (penalties, DRY, n-gram blocking, loop guard)
  (d) the bot's ModelHost with 1, 8, 32 and 128 concurrent requests, its real sampling chain, batch
      size up to 128, with the event loop's lag p99 (a task sleeping 1 ms) in one more run
Then the torch threads of the host's executor (CPU only), and the achieved FLOP/s of the LSTM step beside
a large matrix multiply's. Rows (a)-(c) run on the thread count the bot's host uses (``--threads``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import LagSampler, cores, machine_line, markdown_table
from bot.serving.host import GenerationRequest, ModelHost, default_threads
from model.checkpoint import DEFAULT_CHECKPOINT, LoadedModel, load_checkpoint
from model.device import resolve_device
from model.generate import Decoder, Generator
from model.network import CELL_PATH_MAX_BATCH, CharLSTM
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

SEED_TEXT = "The"
HOST_BATCH = 128  # the (d) rows' GENERATION_BATCH_SIZE: every concurrency level fits in one batch


class FixedLengthDecoder:
    """Samples at temperature 1 with end-of-quote masked, so every row runs to the length cap."""

    def __init__(self, seed: int = 0):
        self.rng = torch.Generator().manual_seed(seed)

    def pick(self, logits, histories, rows):
        probs = logits.float().cpu().clone()  # the draw runs on the CPU, like the bot's chain
        probs[:, EOS_ID] = float("-inf")
        drawn = torch.multinomial(torch.softmax(probs, -1), 1, generator=self.rng).squeeze(1)
        return drawn.to(logits.device)

    def loop_trim(self, history):
        return None


class NoEnd:
    """Wraps a decoder so that it never chooses end-of-quote: each row runs to its length cap."""

    def __init__(self, inner: Decoder):
        self.inner = inner

    def pick(self, logits, histories, rows):
        logits = logits.clone()
        logits[:, EOS_ID] = float("-inf")
        return self.inner.pick(logits, histories, rows)

    def loop_trim(self, history):
        return self.inner.loop_trim(history)


class FixedLengthHost(ModelHost):
    """The bot's ModelHost and sampling chain, end-of-quote masked so that each quote has its full length."""

    def row_decoder(self, requests: Sequence[GenerationRequest], vocab: Vocab) -> Decoder:
        return NoEnd(super().row_decoder(requests, vocab))


def _sample_one(logits: torch.Tensor, rng: torch.Generator) -> int:
    logits = logits.float().cpu().clone()
    logits[[PAD_ID, BOS_ID, EOS_ID, UNK_ID]] = float("-inf")
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=rng))


@torch.inference_mode()
def naive_rerun(model: CharLSTM, prompt: list[int], length: int) -> int:
    """(a) The whole text from a zero state for every character. Returns characters generated."""
    rng = torch.Generator().manual_seed(0)
    device = model.head.weight.device
    ids = [BOS_ID, *prompt]
    while len(ids) - 1 < length:
        logits, _ = model(torch.tensor([ids], device=device))
        ids.append(_sample_one(logits[0, -1], rng))
    return length - len(prompt)


@torch.inference_mode()
def naive_carried(model: CharLSTM, prompt: list[int], length: int) -> int:
    """(b) The textbook char-RNN loop: one character at a time through nn.LSTM, state carried."""
    rng = torch.Generator().manual_seed(0)
    device = model.head.weight.device
    state = None
    logits = None
    for char_id in [BOS_ID, *prompt]:
        logits, state = model(torch.tensor([[char_id]], device=device), state)
    produced = len(prompt)
    while produced < length:
        char_id = _sample_one(logits[0, -1], rng)
        logits, state = model(torch.tensor([[char_id]], device=device), state)
        produced += 1
    return length - len(prompt)


def ours(loaded: LoadedModel, length: int, chain: bool = False) -> int:
    """(c) The Generator, batch 1; with ``chain``, the bot's sampling chain instead of plain sampling."""
    gen = Generator(loaded.model, loaded.vocab)
    decoder = NoEnd(SamplingDecoder(loaded.vocab, SamplingConfig(), 0)) if chain else FixedLengthDecoder()
    [done] = gen.complete([SEED_TEXT], max_chars=length, decoder=decoder)
    return len(done.generated)


def timed(fn: Callable[..., int], *args, repeats: int, warm_up: bool = True) -> tuple[int, float]:
    """Best wall time of ``repeats`` runs (after one warm-up run); returns (characters, seconds)."""
    if warm_up:
        fn(*args)
    best, chars = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        chars = fn(*args)
        best = min(best, time.perf_counter() - start)
    return chars, best


async def host_run(
    checkpoint: Path, device: str, threads: int, concurrency: int, length: int, repeats: int
) -> tuple[int, float, float]:
    """(d) ``concurrency`` requests at once through the host: (characters, best seconds, lag p99 ms).

    The lag comes from one more run with the sampler on: waking every millisecond, it costs the host
    about a tenth of its speed (the executor's Python code gives up the GIL for it), so it stays out
    of the timed runs.
    """
    host = FixedLengthHost(
        checkpoint, device, queue_size=HOST_BATCH, batch_size=HOST_BATCH, batch_wait=0.005, threads=threads
    )

    async def serve() -> tuple[int, float]:
        requests = [GenerationRequest(SEED_TEXT, length, rng_seed=i) for i in range(concurrency)]
        start = time.perf_counter()
        results = await asyncio.gather(*(host.complete(r) for r in requests))
        return sum(len(r.generated) for r in results), time.perf_counter() - start

    await host.start()
    try:
        await host.complete(GenerationRequest(SEED_TEXT, length, rng_seed=0))  # warm-up
        runs = [await serve() for _ in range(repeats)]
        async with LagSampler() as lag:
            await serve()
    finally:
        await host.close()
    chars, seconds = min(runs, key=lambda run: run[1])
    return chars, seconds, lag.percentile_ms(99)


def lstm_step_flops(model: CharLSTM, batch: int) -> float:
    """Multiply-adds x2 of one step: every layer's two gate matmuls, plus the output head."""
    cfg = model.config
    flops = 0
    for layer in range(cfg.num_layers):
        inputs = cfg.embed_dim if layer == 0 else cfg.hidden_size
        flops += 2 * batch * 4 * cfg.hidden_size * (inputs + cfg.hidden_size)
    return flops + 2 * batch * cfg.hidden_size * cfg.vocab_size


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def step_flops_per_second(model: CharLSTM, batch: int, path: str, steps: int = 200) -> float:
    device = model.head.weight.device
    state = model.init_state(batch)
    ids = torch.randint(4, model.config.vocab_size, (batch,), device=device)
    for _ in range(10):
        _, state = model.step(ids, state, path=path)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        _, state = model.step(ids, state, path=path)
    _sync(device)
    return lstm_step_flops(model, batch) * steps / (time.perf_counter() - start)


@torch.inference_mode()
def matmul_flops_per_second(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def verdict(value: float, target: float) -> str:
    return "met" if value >= target else "MISSED"


@dataclass
class Row:
    """One decoder's best run: ``quotes`` quotes of ``chars`` characters in all took ``seconds``."""

    name: str
    chars: int
    seconds: float
    quotes: int = 1
    lag_ms: float | None = None  # the event loop's lag p99 while the host served them

    @property
    def per_char(self) -> float:
        return self.seconds / self.chars

    @property
    def quotes_per_s(self) -> float:
        return self.quotes / self.seconds


def speed_rows(args: argparse.Namespace, loaded: LoadedModel, threads: int, length: int) -> list[Row]:
    """Rows (a) to (d) for quotes of ``length`` characters."""
    model, prompt, device = loaded.model, loaded.vocab.encode(SEED_TEXT), str(loaded.device)
    many = max(3, args.repeats)  # (c) is quick: a few more runs steady its best
    rows = [
        # (a) costs n^2: one timed run, after a warm-up only for short quotes.
        Row("(a) naive re-run", *timed(naive_rerun, model, prompt, length, repeats=1, warm_up=length <= 100)),
        Row("(b) naive carried state", *timed(naive_carried, model, prompt, length, repeats=args.repeats)),
        Row("(c) ours, batch 1", *timed(ours, loaded, length, repeats=many)),
        Row("(c+) ours, batch 1, bot's chain", *timed(ours, loaded, length, True, repeats=many)),
    ]
    for n in args.concurrency:
        chars, seconds, lag = asyncio.run(host_run(args.checkpoint, device, threads, n, length, args.repeats))
        rows.append(Row(f"(d) host, {n} concurrent", chars, seconds, n, lag))
    return rows


def speed_table(rows: list[Row]) -> str:
    naive, carried = rows[0], rows[1]
    return markdown_table(
        ["decoder", "ms/char", "quotes/s", "vs (a)", "vs (b)", "loop lag p99 ms"],
        [
            [
                row.name,
                f"{row.per_char * 1000:.3f}",
                f"{row.quotes_per_s:.2f}",
                f"{naive.per_char / row.per_char:.1f}x",
                f"{carried.per_char / row.per_char:.1f}x",
                "" if row.lag_ms is None else f"{row.lag_ms:.1f}",
            ]
            for row in rows
        ],
    )


def thread_table(checkpoint: Path, threads: int, length: int) -> str:
    """32 concurrent quotes through the host with 1, the default and all cores' torch threads."""
    table = []
    for count in sorted({1, threads, cores()}):
        chars, seconds, lag = asyncio.run(host_run(checkpoint, "cpu", count, 32, length, 1))
        name = f"{count}{' (default)' if count == threads else ''}"
        table.append([name, f"{32 / seconds:.2f}", f"{seconds / chars * 1000:.3f}", f"{lag:.1f}"])
    return markdown_table(["torch threads", "quotes/s", "ms/char", "loop lag p99 ms"], table)


def flops_table(model: CharLSTM, device: torch.device, steps: int) -> tuple[str, float]:
    """The matmul's FLOP/s line and each step path's FLOP/s; also the auto path's share at batch 32."""
    size = 8192 if device.type == "cuda" else 2048
    peak = matmul_flops_per_second(device, size)
    table, share = [], 0.0
    for batch in (1, 32, 128):
        auto = "cell" if device.type == "cpu" and batch < CELL_PATH_MAX_BATCH else "fused"
        for path in ("cell", "fused"):
            rate = step_flops_per_second(model, batch, path, steps)
            share = rate / peak if (batch, path) == (32, auto) else share
            name = f"{path}{' (auto)' if path == auto else ''}"
            table.append([name, batch, f"{rate / 1e9:.1f}", f"{rate / peak:.0%}"])
    heading = f"matrix multiply {size}x{size}: {peak / 1e9:.1f} GFLOP/s\n"
    return heading + markdown_table(["LSTM step path", "batch", "GFLOP/s", "of matmul"], table), share


def targets_table(rows: dict[int, list[Row]], step_share: float) -> str:
    """Issue 9's targets against this run's numbers."""
    length = 300 if 300 in rows else max(rows)
    ours, checks = rows[length][2], []
    checks.append((f"(c) vs (a) per character at {length}", rows[length][0].per_char / ours.per_char, 30))
    checks.append((f"(c) vs (b) per character at {length}", rows[length][1].per_char / ours.per_char, 3))
    for n, table in rows.items():
        named = {row.name: row for row in table}
        one, many = named.get("(d) host, 1 concurrent"), named.get("(d) host, 32 concurrent")
        if one and many:
            checks.append(
                (f"host quotes/s, 32 concurrent vs 1, at {n}", many.quotes_per_s / one.quotes_per_s, 5)
            )
    lag = max((row.lag_ms or 0.0) for table in rows.values() for row in table)
    lines = [
        [name, f"{value:.1f}x", f">= {target}x", verdict(value, target)] for name, value, target in checks
    ]
    lines.append(
        ["step at batch 32 (auto path) / matmul", f"{step_share:.0%}", ">= 60%", verdict(step_share, 0.6)]
    )
    lines.append(["event-loop lag p99 in the (d) rows", f"{lag:.1f} ms", "< 50 ms", verdict(50, lag + 1e-9)])
    return markdown_table(["target", "measured", "wanted", ""], lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row; the best is shown")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: the bot's host)")
    parser.add_argument("--steps", type=int, default=200, help="steps per FLOP/s measurement")
    args = parser.parse_args(argv)
    if min(args.lengths) <= len(SEED_TEXT) or args.repeats < 1 or max(args.concurrency) > HOST_BATCH:
        parser.error(f"lengths must exceed {len(SEED_TEXT)}, repeats >= 1, concurrency <= {HOST_BATCH}")
    device = resolve_device(args.device)
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    loaded = load_checkpoint(args.checkpoint, device=device)
    loaded.model.eval()
    cfg = loaded.model.config
    print(f"machine: {machine_line(threads, str(device))}")
    size = f"{cfg.num_layers}x{cfg.hidden_size} LSTM, {loaded.model.num_parameters():,} parameters"
    print(f"model: {args.checkpoint.name} ({size}) on {device}; seed {SEED_TEXT!r}; best of {args.repeats}")
    rows: dict[int, list[Row]] = {}
    for length in args.lengths:
        rows[length] = speed_rows(args, loaded, threads, length)
        note = "" if length <= 100 else "; (a): one run, no warm-up"
        print(f"\nquotes of {length} characters{note}")
        print(speed_table(rows[length]))
    if device.type == "cpu":
        length = max(args.lengths)
        print(f"\ntorch threads in the host's executor: 32 concurrent quotes of {length} characters")
        print(thread_table(args.checkpoint, threads, length))
    table, share = flops_table(loaded.model, device, args.steps)
    print("\n" + table)
    print("\ntargets (issue 9), read from this run")
    print(targets_table(rows, share))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
