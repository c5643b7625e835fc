"""training.distributed: the world torchrun describes; 2 real CPU processes end with identical weights."""

import os
import subprocess
import sys

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.network import CharLSTM
from tests.helpers import REPO, SAMPLE_CORPUS
from training.distributed import World, all_max, all_sum, from_environment


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = from_environment()
    assert world == World() and world.is_main and not world.distributed
    assert all_sum([1.0, 2.0], world, torch.device("cpu")) == [1.0, 2.0]
    assert all_max([3.0], world, torch.device("cpu")) == [3.0]


def test_torchrun_environment_is_read(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = from_environment()
    assert (world.rank, world.size, world.local_rank) == (3, 4, 1)
    assert world.distributed and not world.is_main


@pytest.mark.slow
def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "training", "train", "--corpus", str(SAMPLE_CORPUS), "--epochs", "1", "--out", str(out)]
    command += ["--hidden", "32", "--embed", "16", "--batch-size", "16", "--eval-every", "4", "--lr", "1e-2"]
    command += ["--warmup-steps", "1", "--progress", "none", "--threads", "1", "--keep-rank-weights"]
    command += ["--voice-samples", "16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"ddp.rank{r}.final.pt", weights_only=True) for r in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    # Training moved them: they are not the seed's initial weights (the trainer seeds the model with --seed).
    loaded = load_checkpoint(out)
    torch.manual_seed(0)
    initial = CharLSTM(loaded.model.config).state_dict()
    assert not torch.equal(initial["lstm.weight_hh_l0"], ranks[0]["lstm.weight_hh_l0"])
    assert loaded.metadata["world_size"] == 2
