"""Data-parallel training with torch.distributed (DDP), as launched by torchrun.

Why this shape: every rank draws the same global batch (one seeded shuffle) and the same random numbers for the
whole global batch (dropout masks, timesteps, noise), then computes only its own rows, rank::world of the batch (the
rows torch's DistributedSampler gives a rank from one permutation). DDP averages the gradients, so N processes take
the steps one process takes with the same global batch and learning rate, up to float summation order, and a
checkpoint does not depend on the number of processes: a run written by N processes resumes in M.

Only rank 0 writes (model directory, log, checkpoints) and shows progress; every rank keeps the same weights,
optimiser, EMA and RNG states. The backend is gloo on CPU and nccl on CUDA.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nwb_ldns.errors import OptionError


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def rows(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """This rank's rows of a global batch of `batch` trials."""
        return torch.arange(self.rank, batch, self.world, device=device)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module the training step calls: DDP (gradient all-reduce) when distributed, else the model."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` over ranks (each rank's share of a global-batch loss -> the global loss)."""
        if self.active:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (plain data: the run plan)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Ranks()


def no_sync(model: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient all-reduce on every micro-batch but the last (accumulation, one all-reduce per step)."""
    if last or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def current() -> Ranks:
    """The ranks of this process from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); rank 0 of 1 without."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    if not dist.is_available():
        raise OptionError("this torch build has no torch.distributed; run fit in one process (without torchrun)")
    return Ranks(int(os.environ.get("RANK", "0") or 0), world, int(os.environ.get("LOCAL_RANK", "0") or 0))


def join(ranks: Ranks) -> None:
    """Join the process group: gloo for CPU tensors, plus nccl for CUDA ones where there is a GPU (one per local
    rank); each rank takes its share of the CPU threads."""
    if not ranks.active or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank)
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(ranks.world)) or ranks.world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))


def finish() -> None:
    """Leave the process group (end of a distributed fit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
