"""GPU check: the model core, the model host and training on CUDA, in one short run.

    python benchmarks/gpu_check.py --out DIR     # on a machine with a CUDA GPU

Prints what it checks and exits non-zero on the first failure:
  1. ``resolve_device("auto")`` picks CUDA, and the bundled checkpoint loads there;
  2. carried-state generation on the GPU gives the logits of re-running the text from a zero state;
  3. the bot's ModelHost serves concurrent requests from the GPU (its model's weights are on CUDA);
  4. a checkpoint saved from CUDA loads on the CPU (``map_location``) with equal weights;
  5. ``python -m training train --device cuda`` runs and reports characters per second; its checkpoint is
     left in ``--out`` so it can be loaded on a CPU-only machine afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.serving.host import GenerationRequest, ModelHost
from model.bundled import SAMPLE_CORPUS
from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, save_checkpoint
from model.device import resolve_device
from model.generate import Generator
from model.vocab import BOS_ID, UNK_ID


class Recorder:
    """Greedy choice, keeping the logits each step was shown."""

    def __init__(self) -> None:
        self.steps: list[tuple[torch.Tensor, list[list[int]]]] = []

    def pick(self, logits, histories, rows):
        self.steps.append((logits.clone(), [list(h) for h in histories]))
        return logits.argmax(dim=-1)

    def loop_trim(self, history):
        return None


def check(label: str, ok: bool, detail: str = "") -> None:
    print(f"[{'ok' if ok else 'FAIL'}] {label} {detail}".rstrip(), flush=True)
    if not ok:
        sys.exit(1)


@torch.inference_mode()
def equivalence(loaded) -> float:
    """Largest difference between stepped and re-run logits over a batch of seeds on the model's device."""
    recorder = Recorder()
    Generator(loaded.model, loaded.vocab).complete(["Hey,", "The king", "I"], max_chars=60, decoder=recorder)
    keep = [i for i in range(len(loaded.vocab)) if i not in (0, BOS_ID, UNK_ID)]
    worst = 0.0
    for logits, histories in recorder.steps:
        for row, history in enumerate(histories):
            ids = torch.tensor([[BOS_ID, *history]], device=loaded.device)
            full, _ = loaded.model(ids)
            stepped, rerun = logits[row, keep].float().cpu(), full[0, -1, keep].float().cpu()
            worst = max(worst, (stepped - rerun).abs().max().item())
    return worst


async def host_round(path: Path) -> tuple[str, float, int]:
    host = ModelHost(path, "auto", batch_size=32, queue_size=64)
    await host.start()
    try:
        start = time.perf_counter()
        done = await asyncio.gather(
            *(host.complete(GenerationRequest(seed="The", max_chars=200, rng_seed=i)) for i in range(32))
        )
        seconds = time.perf_counter() - start
        device = str(next(iter(host._models.values())).device)
    finally:
        await host.close()
    return device, seconds, sum(len(d.text) for d in done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-seconds", type=float, default=60)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {gpu}")

    device = resolve_device("auto")
    check("auto picks CUDA", device.type == "cuda", str(device))
    loaded = load_checkpoint(DEFAULT_CHECKPOINT, device=device)
    check("bundled model loads on CUDA", loaded.device.type == "cuda", str(loaded.device))
    worst = equivalence(loaded)
    check("carried state equals re-run on CUDA (within 1e-4)", worst < 1e-4, f"max |diff| {worst:.2e}")

    host_device, seconds, chars = asyncio.run(host_round(DEFAULT_CHECKPOINT))
    check("ModelHost serves from CUDA", host_device.startswith("cuda"), f"{host_device}: 32 quotes, "
          f"{chars} chars in {seconds:.2f} s")  # fmt: skip

    saved = save_checkpoint(args.out / "from_cuda.pt", loaded.model, loaded.vocab, loaded.metadata)
    on_cpu = load_checkpoint(saved, device="cpu")
    pairs = zip(loaded.model.state_dict().values(), on_cpu.model.state_dict().values(), strict=True)
    same = all(torch.equal(a.cpu(), b) for a, b in pairs)
    check("a CUDA-saved checkpoint loads on the CPU with equal weights", same and on_cpu.device.type == "cpu")
    saved.unlink()

    corpus = SAMPLE_CORPUS
    minutes = str(args.train_seconds / 60)
    command = [sys.executable, "-m", "training", "train", "--corpus", str(corpus), "--device", "cuda",
               "--hidden", "512", "--layers", "2", "--minutes", minutes, "--eval-every", "50",
               "--progress", "jsonl", "--out", str(args.out / "gpu_trained.pt")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.train_seconds + 120)
    rates = [
        json.loads(line).get("chars_per_s") for line in result.stdout.splitlines() if '"progress"' in line
    ]
    rates = [r for r in rates if r]
    check("training on CUDA runs", result.returncode == 0 and bool(rates), result.stderr[-500:])
    print(
        f"training on CUDA (2x512, batch 64): {max(rates):,.0f} chars/s at best, {rates[-1]:,.0f} at the end"
    )


if __name__ == "__main__":
    main()
