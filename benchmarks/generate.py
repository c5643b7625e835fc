"""Generation speed: naive decoders against ours, and the batched step against the CPU's matmul peak.

    python benchmarks/generate.py                      # bundled model, lengths 100 and 300
    python benchmarks/generate.py --checkpoint m.pt --lengths 100 --repeats 3

Rows, all on the same model in one run, every quote forced to exactly the given length (end-of-quote
masked) so that every row does the same work:
  (a) naive re-run: for every new character, run the whole text so far from a zero state (n^2 work)
  (b) naive carried state, batch 1: feed one character at a time through nn.LSTM, carrying (h, c)
  (c) our Generator, batch 1 (packed priming, the step path chosen by CharLSTM.step)
  (d) the bot's ModelHost with 1, 8, 32 and 128 concurrent requests (batched by its worker)
Then the achieved FLOP/s of the batched LSTM step beside a large matrix multiply's FLOP/s.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.checkpoint import DEFAULT_CHECKPOINT, LoadedModel, load_checkpoint
from model.generate import Generator
from model.network import CharLSTM
from model.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SEED_TEXT = "The"


class FixedLengthDecoder:
    """Samples at temperature 1 with end-of-quote masked, so every row runs to the length cap."""

    def __init__(self, seed: int = 0):
        self.rng = torch.Generator().manual_seed(seed)

    def pick(self, logits, histories, rows):
        logits = logits.float().cpu().clone()
        logits[:, EOS_ID] = float("-inf")
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.rng).squeeze(1)

    def loop_trim(self, history):
        return None


def _sample_one(logits: torch.Tensor, rng: torch.Generator) -> int:
    logits = logits.float().clone()
    logits[[PAD_ID, BOS_ID, EOS_ID, UNK_ID]] = float("-inf")
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=rng))


@torch.inference_mode()
def naive_rerun(model: CharLSTM, prompt: list[int], length: int) -> int:
    """(a) The whole text from a zero state for every character. Returns characters generated."""
    rng = torch.Generator().manual_seed(0)
    ids = [BOS_ID, *prompt]
    while len(ids) - 1 < length:
        logits, _ = model(torch.tensor([ids]))
        ids.append(_sample_one(logits[0, -1], rng))
    return length - len(prompt)


@torch.inference_mode()
def naive_carried(model: CharLSTM, prompt: list[int], length: int) -> int:
    """(b) The textbook char-RNN loop: one character at a time through nn.LSTM, state carried."""
    rng = torch.Generator().manual_seed(0)
    state = None
    logits = None
    for char_id in [BOS_ID, *prompt]:
        logits, state = model(torch.tensor([[char_id]]), state)
    produced = len(prompt)
    while produced < length:
        char_id = _sample_one(logits[0, -1], rng)
        logits, state = model(torch.tensor([[char_id]]), state)
        produced += 1
    return length - len(prompt)


def ours(loaded: LoadedModel, batch: int, length: int) -> int:
    """(c) The Generator with ``batch`` rows."""
    gen = Generator(loaded.model, loaded.vocab)
    done = gen.complete([SEED_TEXT] * batch, max_chars=length, decoder=FixedLengthDecoder())
    return sum(len(d.generated) for d in done)


def host_rows(loaded: LoadedModel, checkpoint: Path, concurrency: int, length: int) -> tuple[int, float]:
    """(d) ``concurrency`` requests at once through the bot's ModelHost; returns (chars, seconds)."""
    try:
        from bot.model_host import ModelHost
    except ImportError:
        return 0, float("nan")
    return asyncio.run(_host_run(ModelHost, checkpoint, concurrency, length))


async def _host_run(host_class, checkpoint: Path, concurrency: int, length: int) -> tuple[int, float]:
    host = await host_class.start_for_benchmark(checkpoint, max_batch=max(concurrency, 1))
    try:
        await host.complete_for_benchmark(SEED_TEXT, length, FixedLengthDecoder())  # warm-up
        start = time.perf_counter()
        results = await asyncio.gather(
            *(
                host.complete_for_benchmark(SEED_TEXT, length, FixedLengthDecoder(i))
                for i in range(concurrency)
            )
        )
        elapsed = time.perf_counter() - start
    finally:
        await host.close()
    return sum(len(r.generated) for r in results), elapsed


def timed(fn, *args, repeats: int) -> tuple[int, float]:
    """Best wall time of ``repeats`` runs (after one warm-up); returns (characters, seconds)."""
    fn(*args)
    best = float("inf")
    chars = 0
    for _ in range(repeats):
        start = time.perf_counter()
        chars = fn(*args)
        best = min(best, time.perf_counter() - start)
    return chars, best


def lstm_step_flops(model: CharLSTM, batch: int) -> float:
    """Multiply-adds x2 of one step: every layer's two gate matmuls, plus the output head."""
    cfg = model.config
    flops = 0
    for layer in range(cfg.num_layers):
        inputs = cfg.embed_dim if layer == 0 else cfg.hidden_size
        flops += 2 * batch * 4 * cfg.hidden_size * (inputs + cfg.hidden_size)
    return flops + 2 * batch * cfg.hidden_size * cfg.vocab_size


@torch.inference_mode()
def step_flops_per_second(model: CharLSTM, batch: int, path: str, steps: int = 200) -> float:
    state = model.init_state(batch)
    ids = torch.full((batch,), 5)
    for _ in range(10):
        _, state = model.step(ids, state, path=path)
    start = time.perf_counter()
    for _ in range(steps):
        _, state = model.step(ids, state, path=path)
    return lstm_step_flops(model, batch) * steps / (time.perf_counter() - start)


@torch.inference_mode()
def matmul_flops_per_second(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; torch {torch.__version__}; {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_checkpoint(args.checkpoint)
    model = loaded.model
    prompt = loaded.vocab.encode(SEED_TEXT)
    cfg = model.config
    print(f"machine: {machine()}")
    size = f"{cfg.num_layers}x{cfg.hidden_size} LSTM, {model.num_parameters():,} params"
    print(f"model: {args.checkpoint.name}, {size}")
    for length in args.lengths:
        print(f"\nquote length {length} characters")
        print(f"{'decoder':<34} {'ms/char':>9} {'quotes/s':>9} {'vs (a)':>8} {'vs (b)':>8}")
        rows = [
            ("(a) naive re-run from zero state", timed(naive_rerun, model, prompt, length, repeats=1), 1),
            (
                "(b) naive carried state, batch 1",
                timed(naive_carried, model, prompt, length, repeats=args.repeats),
                1,
            ),
            ("(c) ours, batch 1", timed(ours, loaded, 1, length, repeats=args.repeats), 1),
        ]
        for n in args.concurrency:
            chars, seconds = host_rows(loaded, args.checkpoint, n, length)
            if chars:
                rows.append((f"(d) model host, {n} concurrent", (chars, seconds), n))
        base_a = rows[0][1][1] / rows[0][1][0]
        base_b = rows[1][1][1] / rows[1][1][0]
        for name, (chars, seconds), quotes in rows:
            ms_per_char = seconds / chars * 1000
            print(
                f"{name:<34} {ms_per_char:>9.3f} {quotes / seconds:>9.2f} "
                f"{base_a / (seconds / chars):>7.1f}x {base_b / (seconds / chars):>7.1f}x"
            )
    peak = matmul_flops_per_second()
    print(f"\nmatrix multiply 2048x2048: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'LSTM step':<22} {'batch':>6} {'GFLOP/s':>9} {'of matmul':>10}")
    for path in ("cell", "fused"):
        for batch in (1, 32, 128):
            rate = step_flops_per_second(model, batch, path)
            print(f"{path:<22} {batch:>6} {rate / 1e9:>9.1f} {rate / peak:>9.0%}")


if __name__ == "__main__":
    main()
