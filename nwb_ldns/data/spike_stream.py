"""The spike times of a Units table's selected units, read unit chunk by unit chunk from the HDF5/Zarr dataset.

Why: a 2,000-unit, 2-hour Neuropixels session holds ~1e8 spike times (0.8 GB as float64); reading them whole, and
then a float32 counts array beside them, is what made big sessions fail. Here a chunk of consecutive selected units
(at most a byte budget of spike times, at least one unit) is one read per contiguous run of the dataset, checked
(NaN/inf, negative, unsorted: the same errors, in the same priority, as a check of the whole column) and handed to
the binning; nothing holds more than one chunk.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from nwb_ldns.data import tables
from nwb_ldns.errors import SessionContentError

BYTES_PER_SPIKE = 8  # float64 spike times


def check_numeric_dtype(data, where: str, expected: str) -> None:
    """SessionContentError when a stored column holds text or objects (a damaged or foreign file)."""
    dtype = np.dtype(getattr(data, "dtype", None) or np.asarray(data).dtype)
    if dtype.kind not in "biuf":
        raise SessionContentError(f"{where} holds {dtype} values, not {expected}; the table is damaged or "
                                  "was written by a tool that stored them as text: rewrite the column as numbers")


class SpikeTimes:
    """The spike_times column of the selected `rows` of a Units table, read lazily.

    `index` (like the VectorIndex of a table holding only the selected units): end offset of each selected unit.
    After `scan()`: `t_min`, `t_max` (over every selected spike) and `n_spikes`.
    """

    def __init__(self, data, ends: np.ndarray, rows: np.ndarray, ids: np.ndarray, path: str) -> None:
        ends = np.asarray(ends, dtype=np.int64)
        begins = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        self.data, self.path, self.ids = data, path, np.asarray(ids)
        self.begins, self.ends = begins[rows], ends[rows]
        self.lengths = self.ends - self.begins
        self.index = np.cumsum(self.lengths)
        self.n_spikes = int(self.index[-1]) if len(self.index) else 0
        self.t_min = self.t_max = float("nan")

    def __len__(self) -> int:
        return len(self.index)

    def unit_chunks(self, max_spikes: int, max_units: int | None = None) -> list[tuple[int, int]]:
        """[first, last) ranges of consecutive selected units: at most `max_spikes` spikes (or one unit) and at
        most `max_units` units each."""
        chunks, first, total = [], 0, 0
        limit = max(1, int(max_units or len(self)))
        for unit, length in enumerate(self.lengths):
            if unit > first and (total + int(length) > max_spikes or unit - first >= limit):
                chunks.append((first, unit))
                first, total = unit, 0
            total += int(length)
        if len(self) > first:
            chunks.append((first, len(self)))
        return chunks

    def read(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """(float64 spike times of units first..last, their end offsets): one read per contiguous stored run."""
        pieces, run = [], first
        for unit in range(first, last + 1):
            if unit == last or (unit > run and self.begins[unit] != self.ends[unit - 1]):
                pieces.append(tables.read_range(self.data, int(self.begins[run]), int(self.ends[unit - 1])))
                run = unit
        values = np.concatenate(pieces) if len(pieces) > 1 else (pieces[0] if pieces else np.empty(0))
        return np.asarray(values, dtype=np.float64), np.cumsum(self.lengths[first:last])

    def chunks(self, max_spikes: int, max_units: int | None = None
               ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """(first, last, spike times, end offsets) of each unit chunk, in unit order."""
        for first, last in self.unit_chunks(max_spikes, max_units):
            yield (first, last, *self.read(first, last))

    def scan(self, max_spikes: int) -> None:
        """Check every selected spike time (one streaming pass) and record t_min/t_max.

        Errors, as a check of the whole column would give them: NaN/inf first (the first unit that has one), then
        negative times (the first unit, how many, how many other units, the earliest time), then unsorted times
        (the first unit whose times decrease).
        """
        negative = np.zeros(len(self), dtype=np.int64)
        unsorted, t_min, t_max = None, np.inf, -np.inf
        for first, _last, spikes, index in self.chunks(max_spikes):
            units = first + np.repeat(np.arange(len(index)), np.diff(np.concatenate([[0], index])))
            bad = ~np.isfinite(spikes)
            if bad.any():
                raise SessionContentError(
                    f"{self.path} unit {self.ids[units[np.flatnonzero(bad)[0]]]} has NaN or infinite spike times; "
                    "remove them from the file's spike_times (or exclude the unit with --units-filter)"
                )
            if len(spikes):
                t_min, t_max = min(t_min, float(spikes.min())), max(t_max, float(spikes.max()))
                below = spikes < 0
                if below.any():
                    negative += np.bincount(units[below], minlength=len(self))
            if unsorted is None and len(spikes) > 1:
                decreasing = (np.diff(spikes) < 0) & (units[1:] == units[:-1])  # a drop between units is fine
                if decreasing.any():
                    unsorted = int(units[np.flatnonzero(decreasing)[0] + 1])
        if negative.any():
            first_bad = int(np.flatnonzero(negative)[0])
            others = int((negative > 0).sum()) - 1
            also = f" (and {others} other units)" if others else ""
            raise SessionContentError(
                f"Units table {self.path}: unit {self.ids[first_bad]} has {int(negative[first_bad])} negative spike "
                f"times{also}, the earliest {t_min:.6g} s; NWB times are seconds from session_start_time, so none "
                "may be negative: shift every time in the file (spikes and trials) by the same offset so that none "
                "is below 0, or exclude the unit with --units-filter"
            )
        if unsorted is not None:
            raise SessionContentError(
                f"{self.path} unit {self.ids[unsorted]} has unsorted spike times; rewrite the Units table with each "
                "unit's spike_times sorted ascending (or exclude the unit with --units-filter)"
            )
        self.t_min, self.t_max = (t_min, t_max) if self.n_spikes else (float("nan"), float("nan"))
