"""Generated batches spilled to temporary files, then read back by the writer (a GeneratedSource).

Why: `nwb-ldns sample --n 100000` makes more counts and rates than memory holds, and a Units table needs each
unit's spikes over all trials, while the sampler makes all units of a few trials at a time. Each batch is
written at once to plain files in the output's staging folder (inside its `.partial` folder, so they go with it
on success, failure, Ctrl-C or, after a kill, with the stale-partial cleanup):

- counts.u8: uint8, unit-major (unit, trial * bin), so one unit's counts over many trials are one contiguous read;
  the rare cell above 255 spikes is kept exactly in a small in-memory table;
- <name>.f32: float32 (valid bin, channel) rows in trial order for the rates, latents and behaviour, which is
  exactly the layout of their TimeSeries data.

Plain positioned reads and writes (os.pread/os.pwrite), not np.memmap: written pages of a shared mapping count
towards the process's resident memory, plain file writes go to the page cache only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from nwb_ldns.errors import SessionContentError
from nwb_ldns.export.source import GeneratedSource

COUNT_DTYPE = np.dtype(np.uint8)
COUNT_MAX = int(np.iinfo(COUNT_DTYPE).max)
MAX_OVERFLOW = 1 << 22  # cells above COUNT_MAX kept in memory (24 bytes each)


def _runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """(position in idx, first trial, trial count) of each run of consecutive trial indices."""
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(idx)]])
    return [(int(a), int(idx[a]), int(b - a)) for a, b in zip(starts, stops)]


def _pwrite(fd: int, data: np.ndarray, offset: int) -> None:
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _pread(fd: int, out: np.ndarray, offset: int) -> np.ndarray:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [view[done:]], offset + done)
        else:  # no preadv (older macOS): read, then copy
            chunk = os.pread(fd, len(view) - done, offset + done)
            view[done:done + len(chunk)] = chunk
            got = len(chunk)
        if got == 0:
            raise SessionContentError("a spilled sample file is shorter than written; generate the samples again")
        done += got
    return out


class Spill:
    """The spill files of one sample run: `add` each batch, then `source(meta)` for the writer."""

    def __init__(self, folder: Path, mask: np.ndarray, n_units: int, series: dict[str, int]) -> None:
        self.folder, self.mask, self.n_units, self.series = Path(folder), mask, int(n_units), dict(series)
        n_trials, self.n_bins = mask.shape
        self.cells = n_trials * self.n_bins  # per unit
        self.row_offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1), dtype=np.int64)])
        self.unit_totals = np.zeros(self.n_units, dtype=np.int64)
        self._overflow: list[np.ndarray] = []  # (unit, cell, count) rows
        self._n_overflow = 0
        self._fds: dict[str, int] = {}
        sizes = {"counts": self.n_units * self.cells * COUNT_DTYPE.itemsize}
        sizes.update({name: int(self.row_offsets[-1]) * channels * 4 for name, channels in self.series.items()})
        for name, size in sizes.items():
            fd = os.open(self.folder / (f"{name}.u8" if name == "counts" else f"{name}.f32"),
                         os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self._fds[name] = fd
            os.ftruncate(fd, size)  # sparse until written

    def add(self, idx: np.ndarray, counts: np.ndarray, series: dict[str, np.ndarray]) -> None:
        """Spill one batch: trials `idx`, counts (trial, time, unit) whole numbers, series (trial, time, channel)."""
        idx = np.asarray(idx, dtype=np.int64)
        valid = self.mask[idx]
        counts = np.where(valid[:, :, None], counts, 0).astype(np.int64)
        self.unit_totals += counts.sum(axis=(0, 1))
        over = np.argwhere(counts > COUNT_MAX)
        if over.size:
            self._keep_overflow(idx, counts, over)
        compact = np.minimum(counts, COUNT_MAX).astype(COUNT_DTYPE)
        for first, trial, length in _runs(idx):
            block = compact[first:first + length].reshape(length * self.n_bins, self.n_units).T  # unit-major
            for unit in range(self.n_units):
                offset = (unit * self.cells + trial * self.n_bins) * COUNT_DTYPE.itemsize
                _pwrite(self._fds["counts"], block[unit], offset)
            for name, values in series.items():
                rows = values[first:first + length][valid[first:first + length]].astype(np.float32)
                _pwrite(self._fds[name], rows, int(self.row_offsets[trial]) * self.series[name] * 4)

    def _keep_overflow(self, idx: np.ndarray, counts: np.ndarray, over: np.ndarray) -> None:
        self._n_overflow += len(over)
        if self._n_overflow > MAX_OVERFLOW:
            raise SessionContentError(
                f"the model generates more than {COUNT_MAX} spikes in one bin in over {MAX_OVERFLOW:,} cells; its "
                "rates are far out of range: check them with `nwb-ldns evaluate`, or sample fewer trials with the "
                "Python API (LDNSModel.sample + write_synthetic)")
        trial, time, unit = over.T
        cell = idx[trial] * self.n_bins + time
        self._overflow.append(np.stack([unit, cell, counts[trial, time, unit]], axis=1))

    def read_counts(self, units: slice, trials: slice) -> np.ndarray:
        """(trials, time, units) counts read back, exact (overflow cells restored)."""
        u0, u1, _ = units.indices(self.n_units)
        t0, t1, _ = trials.indices(self.mask.shape[0])
        cells = (t1 - t0) * self.n_bins
        out = np.empty((u1 - u0, cells), dtype=COUNT_DTYPE)
        for row, unit in enumerate(range(u0, u1)):
            _pread(self._fds["counts"], out[row], (unit * self.cells + t0 * self.n_bins) * COUNT_DTYPE.itemsize)
        block = out.T.reshape(t1 - t0, self.n_bins, u1 - u0)
        if self._overflow:
            table = np.concatenate(self._overflow)
            pick = ((table[:, 0] >= u0) & (table[:, 0] < u1) & (table[:, 1] >= t0 * self.n_bins)
                    & (table[:, 1] < t1 * self.n_bins))
            if pick.any():
                block = block.astype(np.int64)
                unit, cell, value = table[pick].T
                block[(cell // self.n_bins) - t0, cell % self.n_bins, unit - u0] = value
        return block

    def read_rows(self, name: str, trials: slice) -> np.ndarray:
        """The spilled valid-bin rows of `trials` for series `name`."""
        t0, t1, _ = trials.indices(self.mask.shape[0])
        r0, r1 = int(self.row_offsets[t0]), int(self.row_offsets[t1])
        out = np.empty((r1 - r0, self.series[name]), dtype=np.float32)
        return _pread(self._fds[name], out, r0 * self.series[name] * 4) if out.size else out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class SpillSource(GeneratedSource):
    """The writer's view of a Spill: `meta` (coords, mask, trial/unit columns, attrs) beside the spilled arrays."""

    def __init__(self, meta: xr.Dataset, spill: Spill) -> None:
        super().__init__(meta, spill.unit_totals, spill.series)
        self.spill = spill

    def counts(self, units: slice, trials: slice) -> np.ndarray:
        return self.spill.read_counts(units, trials)

    def series_rows(self, name: str, trials: slice) -> np.ndarray:
        return self.spill.read_rows(name, trials)

    def close(self) -> None:
        self.spill.close()
