"""benchmarks/measure.py: percentiles, the event-loop lag sampler, tables and the machine line."""

import asyncio
import time

import pytest
import torch

from benchmarks.measure import (
    LagSampler,
    machine_line,
    markdown_table,
    peak_rss_mib,
    percentile,
    reset_peak_rss,
)


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 1) == 1.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 99) != percentile([], 99)  # NaN when there is nothing to rank
    with pytest.raises(ValueError, match="q must be"):
        percentile(values, 0)


async def test_lag_sampler_sees_a_blocked_event_loop():
    async with LagSampler() as lag:
        await asyncio.sleep(0.02)
        time.sleep(0.08)  # holds the event loop, as a torch op on it would
        await asyncio.sleep(0.02)
    assert lag.count >= 3
    assert max(lag.lags) >= 0.06
    assert lag.percentile_ms(100) >= 60
    assert lag.percentile_ms(50) < 60  # most wake-ups were not blocked


async def test_lag_sampler_on_a_free_loop_stays_low():
    async with LagSampler(interval=0.002) as lag:
        await asyncio.sleep(0.1)
    assert lag.count >= 10
    assert lag.percentile_ms(50) < 20  # generous: the machine is shared, but nothing blocks the loop
    with pytest.raises(ValueError, match="interval"):
        LagSampler(interval=0)


def test_markdown_table_aligns_columns():
    text = markdown_table(["name", "value"], [["a", 1.5], ["longer name", "12"]])
    lines = text.splitlines()
    assert lines[0] == "| name        | value |"
    assert lines[1] == "|-------------|------:|"
    assert lines[2] == "| a           |   1.5 |"
    assert lines[3] == "| longer name |    12 |"


def test_machine_line_and_memory():
    line = machine_line(threads=3)
    assert torch.__version__ in line and "3 torch thread(s)" in line and "cores" in line
    assert peak_rss_mib() > 10  # this process holds torch: tens of MiB at least


def test_peak_memory_starts_over_after_a_reset():
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page, so it is resident
    with_block = peak_rss_mib()
    del block
    if not reset_peak_rss():
        pytest.skip("this system cannot reset the peak resident set size")
    assert peak_rss_mib() < with_block - 32
