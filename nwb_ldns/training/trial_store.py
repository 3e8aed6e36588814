"""`TrialCounts`: the counts of a split for training, read batch by batch from a big session's on-disk cache.

Why: the training loops index `counts[index]` (a tensor of trial positions, or a slice) and send the batch to the
device; for a session whose counts live in the on-disk cache (nwb_ldns.data.counts_cache) this array-like answers
those reads from the cache, so the loops stay as they are and no split is ever held whole in memory. Sessions in
memory keep plain tensors (`split_counts` returns one), so their training is unchanged to the bit.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import xarray as xr

from nwb_ldns.data.counts_cache import chunk_bytes, is_lazy


class TrialCounts:
    """(trials, bins, units) float32 counts of the trials at `positions` of a cached session's counts."""

    dtype = torch.float32

    def __init__(self, counts: xr.DataArray, positions: np.ndarray) -> None:
        self.counts = counts
        self.positions = np.asarray(positions, dtype=np.int64)
        self.shape = torch.Size((len(self.positions), int(counts.shape[1]), int(counts.shape[2])))

    def __len__(self) -> int:
        return self.shape[0]

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __getitem__(self, index) -> torch.Tensor:
        """float32 counts of the trials `index` (tensor/array of positions in this split, a slice, or an int)."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        single = isinstance(index, (int, np.integer))
        chosen = self.positions[[int(index)] if single else index]
        values = self.counts.isel(trial=chosen).values if len(chosen) else np.zeros((0, *self.shape[1:]), np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        return tensor[0] if single else tensor

    def blocks(self, max_bytes: int | None = None) -> Iterator[tuple[slice, torch.Tensor]]:
        """(slice, counts) of consecutive trial blocks of at most `max_bytes` (default: the binning chunk size)."""
        step = max(1, (max_bytes or chunk_bytes()) // max(1, 4 * self.shape[1] * self.shape[2]))
        for first in range(0, len(self), step):
            part = slice(first, min(len(self), first + step))
            yield part, self[part]

    def numpy(self) -> np.ndarray:
        """Every trial at once (for the stages that need the whole split, e.g. the spike-history GLM)."""
        return self[slice(None)].numpy()


def split_counts(session: xr.Dataset, positions: np.ndarray) -> torch.Tensor | TrialCounts:
    """The counts of the trials at `positions`: a float32 tensor in memory, a TrialCounts for a cached session."""
    if is_lazy(session["counts"]):
        return TrialCounts(session["counts"], positions)
    return torch.from_numpy(np.ascontiguousarray(session["counts"].values[positions], dtype=np.float32))


def count_blocks(counts: torch.Tensor | TrialCounts) -> Iterator[tuple[slice, torch.Tensor]]:
    """Trial blocks of either kind of counts: the whole tensor as one block, a TrialCounts block by block."""
    if isinstance(counts, TrialCounts):
        yield from counts.blocks()
    else:
        yield slice(0, counts.shape[0]), counts


def masked_mean_count(counts: torch.Tensor | TrialCounts, mask: torch.Tensor) -> float:
    """Mean count per valid bin and unit over the trials (what `sample` compares generated counts with)."""
    if not isinstance(counts, TrialCounts):
        weight = mask[..., None].to(counts.dtype)
        return float((counts * weight).sum() / (weight.sum() * counts.new_tensor(float(counts.shape[2]))).clamp_min(1.0))
    total = 0.0
    for part, block in counts.blocks():
        total += float((block.double() * mask[part][..., None].double()).sum())
    return float(total / max(float(mask.double().sum()) * float(counts.shape[2]), 1.0))


def masked_sum_over_trials(counts: torch.Tensor | TrialCounts, mask: torch.Tensor) -> torch.Tensor:
    """Sum over trials of counts times the validity mask [L, U] (exact for whole counts below 2**24 either way)."""
    total = None
    for part, block in count_blocks(counts):
        summed = (block * mask[part][..., None].to(block.dtype)).sum(0)
        total = summed if total is None else total + summed
    return total if total is not None else torch.zeros(counts.shape[1:], dtype=torch.float32)
