"""Showing training progress: a tqdm bar for people, JSON lines for a parent process, or nothing.

``bar`` draws on stderr with the loss, characters per second and time left. ``jsonl`` prints one JSON
object per line on stdout (``{"event": "progress", ...}`` every few seconds, ``{"event": "val", ...}``
after each validation), which is what the bot reads when it runs a retrain as a child process.
"""

from __future__ import annotations

import json
import sys
import time

from tqdm import tqdm


class Progress:
    """Progress of one run against a time budget (seconds) or a step budget, whichever is given."""

    def __init__(self, mode: str, budget_s: float | None, total_steps: int | None, every_s: float = 5.0):
        self.mode = mode
        self.budget_s, self.total_steps = budget_s, total_steps
        self.every_s, self._last = every_s, 0.0
        self._bar = None
        if mode == "bar":
            total = round(budget_s) if budget_s else total_steps
            # A time budget counts seconds, so tqdm's rate ("s/s") would be noise: leave it out.
            fmt = "{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}{postfix}]" if budget_s else None
            self._bar = tqdm(
                total=total, unit="step", bar_format=fmt, dynamic_ncols=True, file=sys.stderr, mininterval=1.0
            )
        self._shown = 0

    def _left_s(self, step: int, elapsed: float) -> float:
        left = []
        if self.budget_s:
            left.append(self.budget_s - elapsed)
        if self.total_steps and step:
            left.append(elapsed / step * (self.total_steps - step))
        return max(0.0, min(left)) if left else 0.0

    def update(self, step: int, elapsed: float, loss: float, chars_per_s: float) -> None:
        left = self._left_s(step, elapsed)
        if self._bar is not None:
            position = round(elapsed) if self.budget_s else step
            self._bar.update(max(0, min(self._bar.total, position) - self._shown))
            self._shown = min(self._bar.total, position)
            self._bar.set_postfix(
                step=step, loss=f"{loss:.3f}", cps=f"{chars_per_s:,.0f}", left=f"{left:.0f}s"
            )
        elif self.mode == "jsonl" and time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            record = {
                "event": "progress",
                "step": step,
                "seconds": round(elapsed, 1),
                "train_nats": loss,
                "chars_per_s": round(chars_per_s),
                "seconds_left": round(left),
            }
            print(json.dumps(record), flush=True)

    def validation(self, record: dict, best: float) -> None:
        if self._bar is not None:
            self._bar.write(
                f"step {record['step']}: validation {record['val_nats']:.4f} nats/char "
                f"({record['val_bpc']:.3f} bits), best {best:.4f}"
            )
        elif self.mode == "jsonl":
            print(json.dumps({**record, "best_nats": best}), flush=True)

    def close(self, step: int, elapsed: float) -> None:
        """Show where the run ended (a budget run that used its time shows a full bar) and stop drawing."""
        if self._bar is not None:
            position = round(elapsed) if self.budget_s else step
            self._bar.update(max(0, min(self._bar.total, position) - self._shown))
            self._bar.close()
