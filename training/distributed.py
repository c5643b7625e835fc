"""Multi-process training with PyTorch's own engine: ``torchrun --nproc_per_node N -m training train ...``.

torchrun starts N copies of the command and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address in each one's environment. ``setup`` joins the process group (gloo on CPU, NCCL on
CUDA), gives each process its share of the CPU threads or its own GPU, and returns a ``World`` that
the trainer uses to split data, agree on when to stop, and let rank 0 alone write files. Without
torchrun it returns a world of one and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and progress; the others only compute."""
        return self.rank == 0


def from_environment() -> World:
    """The world torchrun describes in the environment, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group when started by torchrun; returns the world and this rank's device."""
    world = from_environment()
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        # Processes on one machine share its cores; more threads than cores only thrash.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.size))
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return world, device


def teardown(world: World) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (unchanged in a world of one)."""
    if not world.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_max(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise maximum over all ranks: ranks agree on elapsed time and on a stop flag."""
    if not world.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()
