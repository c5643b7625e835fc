"""Training metrics: a JSON Lines log and a loss-curve PNG beside the checkpoint (and the names of every
file kept beside one).

    log = MetricsLog(metrics_path_for("runs/pat.pt"))   # runs/pat.metrics.jsonl
    log.write({"step": 10, "train_nats": 2.3})
    plot_losses(log.path, "runs/pat.loss.png")

Each line is one JSON object with an ``event`` (``train``, ``val`` or ``done``); the plot draws
training and validation loss in nats per character against the step.
"""

from __future__ import annotations

import json
from pathlib import Path


def metrics_path_for(checkpoint: str | Path) -> Path:
    """``runs/pat.pt`` -> ``runs/pat.metrics.jsonl``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".metrics.jsonl")


def plot_path_for(checkpoint: str | Path) -> Path:
    """``runs/pat.pt`` -> ``runs/pat.loss.png``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".loss.png")


def replay_cache_path_for(checkpoint: str | Path) -> Path:
    """``models/v3.pt`` -> ``models/v3.replay.jsonl``: the model's own samples (``training.base_text``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".replay.jsonl")


def sidecar_paths_for(checkpoint: str | Path) -> list[Path]:
    """Every file that lives beside a checkpoint and goes when it goes."""
    return [metrics_path_for(checkpoint), plot_path_for(checkpoint), replay_cache_path_for(checkpoint)]


class MetricsLog:
    """Appends one JSON object per line, flushed at once so a crashed run keeps its history."""

    def __init__(self, path: str | Path, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not append:
            self.path.write_text("", encoding="utf-8")

    def write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    """Every record of a metrics file."""
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def plot_losses(metrics: str | Path, png: str | Path) -> Path:
    """Draw train and validation nats per character against the step; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to a file
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    train = [(r["step"], r["train_nats"]) for r in records if r.get("event") == "train"]
    val = [(r["step"], r["val_nats"]) for r in records if r.get("event") == "val"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1, alpha=0.7)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", linewidth=1.5, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("nats per character")
    ax.set_title(Path(png).stem)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return Path(png)
