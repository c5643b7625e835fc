"""The voice's caches keep the bot's memory flat while it writes quote after quote (bundled model)."""

from pathlib import Path

import pytest

from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from model.generate import RunningBatch
from model.sampling import SamplingConfig, SamplingDecoder

STATM = Path("/proc/self/statm")


def resident_mib() -> float:
    """This process's resident memory now (Linux), in MiB."""
    import resource

    return int(STATM.read_text().split()[1]) * resource.getpagesize() / 2**20


@pytest.mark.skipif(not STATM.exists(), reason="reads /proc/self/statm (Linux)")
def test_writing_quotes_does_not_grow_memory():
    loaded = load_checkpoint(DEFAULT_CHECKPOINT)
    seeds = ["", "The", "I", "What", "My lord,", "Now", "O", "Good"]
    batch = RunningBatch(loaded.model, loaded.vocab, SamplingDecoder(loaded.vocab, SamplingConfig(), 1))
    batch.add(seeds * 4, 400)  # 32 rows at a time, refilled as rows end, like the bot's host
    added, done, warm = 32, 0, None
    while batch.busy:
        for _ in batch.step():
            done += 1
            if done == 40:
                warm = resident_mib()
            if added < 160:
                batch.add([seeds[added % len(seeds)]], 400)
                added += 1
    assert warm is not None and done == 160
    assert resident_mib() - warm < 60  # numpy-backed cached biases once grew it by ~3 MB a quote
