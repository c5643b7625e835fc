"""The training loop: AdamW on whole quotes with carried state, a time or epoch budget, best checkpoint kept.

    settings = TrainSettings(minutes=5, batch_size=64)
    result = train_model(model, vocab, train_ids, val_ids, settings, out="runs/pat.pt", metadata={...})
    result.best_nats, result.steps, result.seconds

One optimiser step per chunk (see ``training.batching``): warm-up, then cosine decay to
``min_lr_ratio`` of the peak over the budget (time or steps, whichever runs out first), gradient
clipping, validation every ``eval_every`` steps in nats and bits per character. Each new best is
written atomically to ``out``; training stops early after ``patience`` validations without a gain.
A metrics file and a loss-curve PNG go beside the checkpoint, and ``out`` + ``.state`` keeps the
optimiser and step for ``--resume``. Under torchrun the model is wrapped in DistributedDataParallel;
ranks agree every step on the elapsed time and on stopping, so none waits forever for another.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from model.checkpoint import save_checkpoint
from model.network import CharLSTM
from model.vocab import Vocab
from training.batching import QuoteBatcher, detach
from training.distributed import World, all_max, all_sum
from training.metrics import MetricsLog, metrics_path_for, plot_losses, plot_path_for
from training.progress import Progress
from training.scoring import LN2, Score, masked_nll, score_quotes


@dataclass
class TrainSettings:
    """How to train; every field has a command-line option of the same name."""

    minutes: float | None = None
    epochs: float | None = None
    batch_size: int = 64
    chunk_len: int = 256
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 200
    patience: int = 5
    seed: int = 0
    progress: str = "bar"  # bar | jsonl | none
    keep_rank_weights: bool = False  # write each rank's final weights (checks that DDP ranks agree)

    def __post_init__(self) -> None:
        if self.minutes is None and self.epochs is None:
            raise ValueError("give a budget: --minutes N or --epochs N")
        for name in ("minutes", "epochs"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name} must be above 0, got {value}")
        for name in ("batch_size", "chunk_len", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"--lr must be above 0, got {self.lr}")
        if self.progress not in ("bar", "jsonl", "none"):
            raise ValueError(f"--progress must be bar, jsonl or none, not {self.progress!r}")


@dataclass
class TrainResult:
    best_nats: float
    steps: int
    seconds: float
    stopped: str  # "budget" | "early" | "epochs"
    out: Path
    chars: int = 0  # characters predicted in training (every rank), padding excluded
    history: list[dict] = field(default_factory=list)

    @property
    def best_bpc(self) -> float:
        return self.best_nats / LN2


def lr_at(settings: TrainSettings, step: int, progress: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from ``lr`` down to ``lr * min_lr_ratio``."""
    warm = min(1.0, (step + 1) / max(1, settings.warmup_steps))
    floor = settings.lr * settings.min_lr_ratio
    cosine = floor + 0.5 * (settings.lr - floor) * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cosine * warm


def steps_per_epoch(batcher: QuoteBatcher) -> int:
    """Optimiser steps in one epoch: one per chunk of every batch."""
    return sum(len(batch.global_tokens) for batch in batcher.epoch(0))


def _atomic_torch_save(payload: dict, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def state_path_for(checkpoint: str | Path) -> Path:
    """Where the resumable training state of ``checkpoint`` lives: ``runs/pat.pt.state``."""
    return Path(str(checkpoint) + ".state")


def train_model(
    model: CharLSTM,
    vocab: Vocab,
    train_ids: Sequence[Sequence[int]],
    val_ids: Sequence[Sequence[int]],
    settings: TrainSettings,
    out: str | Path,
    metadata: dict | None = None,
    world: World | None = None,
    resume: str | Path | None = None,
    on_validation: Callable[[dict], None] | None = None,
    guard: Callable[[], tuple[bool, dict]] | None = None,
) -> TrainResult:
    """Train ``model`` (already on its device) and keep its best version at ``out``; see the module doc.

    ``guard`` (fine-tuning): called when a validation beats the best; (whether this model may be kept,
    figures for the log). One it may not keep (it drifted too far from its parent) counts as no gain.
    """
    world = world or World()
    out = Path(out)
    device = model.head.weight.device
    if not val_ids:
        raise ValueError("the validation split is empty: the corpus is too small or --val-fraction is 0")
    torch.manual_seed(settings.seed)
    batcher = QuoteBatcher(train_ids, settings.batch_size, settings.chunk_len, world.rank, world.size)
    total_steps = math.ceil(settings.epochs * steps_per_epoch(batcher)) if settings.epochs else None
    budget_s = settings.minutes * 60.0 if settings.minutes else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    step, epoch, spent, best = 0, 0, 0.0, float("inf")
    if resume is not None:
        saved = torch.load(state_path_for(resume), map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        step, epoch, spent, best = saved["step"], saved["epoch"], saved["seconds"], saved["best_nats"]
    net = DistributedDataParallel(model) if world.distributed else model
    log = MetricsLog(metrics_path_for(out), append=resume is not None) if world.is_main else None
    bar = Progress(settings.progress if world.is_main else "none", budget_s, total_steps)
    history: list[dict] = []
    since_best, stopped = 0, "epochs"
    started = time.monotonic() - spent
    chars_done, window_start, loss_ema = 0, time.monotonic(), None
    chars_total = 0

    last_plot = [0.0]

    def validate() -> float:
        nonlocal best, since_best
        local = score_quotes(model, val_ids, rank=world.rank, world_size=world.size)
        nll, tokens = all_sum([local.nll, float(local.tokens)], world, device)
        score = Score(nll, int(tokens))
        record = {
            "event": "val",
            "step": step,
            "seconds": round(elapsed, 1),
            "val_nats": score.nats,
            "val_bpc": score.bits_per_char,
            "lr": lr,
        }
        history.append(record)
        allowed = True
        if guard is not None and score.nats < best - 1e-4:
            allowed, figures = guard()
            record.update(figures)
            record["guarded"] = not allowed
        if score.nats < best - 1e-4 and allowed:
            best, since_best = score.nats, 0
            if world.is_main:
                meta = {
                    **(metadata or {}),
                    "val_nats": score.nats,
                    "val_bpc": score.bits_per_char,
                    "val_tokens": score.tokens,
                    "steps": step,
                    "training_seconds": round(elapsed, 1),
                    "parameters": model.num_parameters(),
                    "world_size": world.size,
                    "train_settings": {k: v for k, v in asdict(settings).items() if v is not None},
                }
                save_checkpoint(out, model, vocab, meta)
        else:
            since_best += 1
        if world.is_main:
            log.write(record)
            _atomic_torch_save(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "step": step,
                    "epoch": epoch,
                    "seconds": elapsed,
                    "best_nats": best,
                },
                state_path_for(out),
            )
            if time.monotonic() - last_plot[0] > 60:  # drawing takes a moment; once a minute is plenty
                plot_losses(log.path, plot_path_for(out))
                last_plot[0] = time.monotonic()
            bar.validation(record, best)
            if on_validation:
                on_validation(record)
        return score.nats

    model.train()
    lr = lr_at(settings, step, 0.0)
    elapsed = spent
    last_validated = -1
    done = False
    while not done:
        for batch in batcher.epoch(settings.seed + epoch):
            state = None
            for chunk in batch.chunks(settings.chunk_len, device):
                # Ranks agree on the clock (the slowest one's), so they stop at the same step.
                elapsed = all_max([time.monotonic() - started], world, device)[0]
                progress = max(
                    elapsed / budget_s if budget_s else 0.0, step / total_steps if total_steps else 0.0
                )
                if progress >= 1.0:
                    stopped, done = ("budget" if budget_s and elapsed >= budget_s else "epochs"), True
                    break
                lr = lr_at(settings, step, progress)
                for group in optimiser.param_groups:
                    group["lr"] = lr
                logits, state = net(chunk.inputs, state)
                # DDP averages gradients over ranks, so scale each rank's sum by world / global tokens:
                # the average is then the exact mean loss over every real target in the global chunk.
                loss_sum = masked_nll(logits, chunk.targets)
                loss = loss_sum * (world.size / max(1, chunk.tokens))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
                optimiser.step()
                state = detach(state)
                step += 1
                local_tokens = int((chunk.targets != 0).sum())
                chars_done += local_tokens * world.size
                chars_total += chunk.tokens
                nats = float(loss_sum.detach()) / max(1, local_tokens)
                loss_ema = nats if loss_ema is None else 0.95 * loss_ema + 0.05 * nats
                if step % 20 == 0 and world.is_main:
                    now = time.monotonic()
                    speed = chars_done / max(1e-9, now - window_start)
                    chars_done, window_start = 0, now
                    log.write(
                        {
                            "event": "train",
                            "step": step,
                            "seconds": round(elapsed, 1),
                            "train_nats": loss_ema,
                            "lr": lr,
                            "chars_per_s": round(speed),
                        }
                    )
                    bar.update(step, elapsed, loss_ema, speed)
                if step % settings.eval_every == 0:
                    validate()
                    last_validated = step
                    if since_best >= settings.patience:
                        stopped, done = "early", True
                        break
            if done:
                break
        else:
            epoch += 1
    if last_validated != step:
        validate()
    if world.is_main:
        log.write(
            {
                "event": "done",
                "step": step,
                "seconds": round(elapsed, 1),
                "best_val_nats": best,
                "stopped": stopped,
            }
        )
        plot_losses(log.path, plot_path_for(out))
    if settings.keep_rank_weights:
        torch.save(model.state_dict(), out.with_name(f"{out.stem}.rank{world.rank}.final.pt"))
    bar.close(step, elapsed)
    return TrainResult(best, step, elapsed, stopped, out, chars=chars_total, history=history)
