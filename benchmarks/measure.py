"""What the benchmarks measure besides wall time: event-loop lag, percentiles, peak memory, the machine.

    async with LagSampler() as lag:       # a task on the running loop sleeps 1 ms over and over
        await work()
    print(lag.percentile_ms(99), lag.count)
    print(machine_line(threads=1), peak_rss_mib())

The lag of one sample is how much later than asked the sleeping task woke: anything that holds the
event loop (a blocking call, a long callback, the GIL held by another thread) shows up there, which is
what a Discord bot's users feel as a slow reply or a missed heartbeat.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; NaN when there are none."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q!r}")
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class LagSampler:
    """Records how late the running event loop wakes a task that sleeps ``interval`` seconds in a loop."""

    def __init__(self, interval: float = 0.001):
        if not interval > 0:
            raise ValueError(f"interval must be above 0 seconds, got {interval!r}")
        self.interval = interval
        self.lags: list[float] = []  # seconds late, one per wake-up
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def __aenter__(self) -> LagSampler:
        self.start()
        await asyncio.sleep(0)  # the sampler is running before the watched work starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lag-sampler")

    async def stop(self) -> None:
        """Stop after the current sleep; the samples stay in ``lags``."""
        self._stopping = True
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - start - self.interval))

    @property
    def count(self) -> int:
        return len(self.lags)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the lags, in milliseconds."""
        return percentile(self.lags, q) * 1000


def peak_rss_mib() -> float:
    """This process's peak resident memory (since ``reset_peak_rss``), in MiB, torch's included."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Start the peak memory over from the current use (Linux 4.0+); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size
    except OSError:
        return False
    return True


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_line(threads: int, device: str = "cpu") -> str:
    """One line naming where a benchmark ran: CPU, cores, torch threads, versions, and the GPU if used."""
    line = (
        f"{cpu_name()}, {cores()} cores; torch {torch.__version__}, {threads} torch thread(s); "
        f"Python {platform.python_version()}"
    )
    if device.startswith("cuda") and torch.cuda.is_available():
        line += f"; GPU {torch.cuda.get_device_name(torch.device(device))}"
    return line


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: the first column left-aligned, the others right-aligned (numbers)."""
    text = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(text[0]), rule, *(line(row) for row in text[1:])])
