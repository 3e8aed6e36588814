"""Counts <-> spike times, vectorised over units, trials and bins at once.

`counts_to_spike_arrays` is the one implementation of the project's counts -> spike-times rule (k spikes evenly
inside a bin: t0 + dt*j/(k+1), rounded to 1 us; used by the converters, the synthetic writer and the test
fixtures), returning the flat array + cumulative index a Units table stores, without a per-unit Python loop;
`spike_time_blocks` applies it block by block for a write that cannot hold every spike time at once;
`spike_arrays_to_counts` is its inverse for trials laid out on one timeline. A generated file may instead place
its spikes uniformly at random inside their bins (`UniformPlacement`, `write_synthetic(spike_placement="uniform")`),
seeded per unit so the times do not depend on how the counts are cut into blocks; re-binned, both give the counts.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from nwb_ldns.errors import OptionError, SessionContentError

PLACEMENTS = ("even", "uniform")  # how a generated file places k spikes inside their bin
PLACEMENT_STREAM = 0x5B1CE  # keeps the placement draws apart from any other stream seeded with the sample seed


def check_placement(placement: str) -> str:
    """The placement name, or an OptionError naming the choices."""
    if placement not in PLACEMENTS:
        raise OptionError(f"spike placement {placement!r} is not one of {', '.join(PLACEMENTS)}; pass "
                          "--spike-placement even (the default) or uniform")
    return placement


class UniformPlacement:
    """Spike times drawn uniformly inside their bin, sorted, at least 0.5 us from its edges, on the 1 us grid.

    One random stream per unit (seeded with (seed, PLACEMENT_STREAM, unit position)), read in the unit's spike
    order, so the times are the same whether a unit's trials come in one block or many.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._streams: dict[int, np.random.Generator] = {}

    def place(self, unit: int, bin_starts: np.ndarray, bin_width: float, k: np.ndarray) -> np.ndarray:
        """Times (s) of the spikes of one unit: `k[i]` spikes in the bin starting at `bin_starts[i]`."""
        stream = self._streams.get(unit)
        if stream is None:
            stream = self._streams[unit] = np.random.default_rng([self.seed, PLACEMENT_STREAM, unit])
        cell = np.repeat(np.arange(len(k), dtype=np.float64), k)
        fraction = np.sort(cell + stream.random(len(cell))) - cell  # sorted inside each bin
        starts = np.repeat(bin_starts, k)
        low = np.floor(starts * 1e6 + 0.5) + 1  # in us: strictly inside the bin after rounding
        high = np.maximum(np.floor((starts + bin_width) * 1e6 + 0.5) - 1, low)
        return np.rint(low + (high - low) * np.clip(fraction, 0.0, 1.0)) / 1e6


def integer_counts(counts: np.ndarray) -> np.ndarray:
    """Counts as int64, refusing negative or non-integer values (spike times need whole spikes)."""
    counts = np.asarray(counts)
    as_int = counts.astype(np.int64)
    if (as_int != counts).any() or (as_int < 0).any():
        raise SessionContentError(
            "counts must be non-negative whole numbers to become spike times; sample Poisson counts from the rates"
        )
    return as_int


def counts_to_spike_arrays(
    counts: np.ndarray,
    bin_width: float,
    trial_starts: np.ndarray,
    *,
    block_bins: int = 1 << 17,
    group_units: int = 16,
    placement: UniformPlacement | None = None,
    first_unit: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(trial, time, unit) counts -> (spike_times, index): unit u's times are spike_times[index[u-1]:index[u]].

    The flat, unit-major concatenation of every unit's sorted spike times; raises
    SessionContentError for negative or fractional counts. Reads `group_units` adjacent unit columns at once
    (they share cache lines) and works on `block_bins` bins of one unit at a time so the temporaries stay in
    cache: on small VMs one pass over 10^7-element temporaries is slower than many cache-sized passes.
    `placement` (None: the even rule) places the spikes at random instead; `first_unit` is the position of the
    first unit column in the whole session (its random stream).
    """
    counts = np.asarray(counts)
    n_trials, n_bins, n_units = counts.shape
    n_per_unit = n_trials * n_bins
    bin_starts = (np.asarray(trial_starts, dtype=np.float64)[:, None] + np.arange(n_bins)[None, :] * bin_width).ravel()
    per_unit = counts.sum(axis=(0, 1), dtype=np.float64).astype(np.int64)
    index = np.cumsum(per_unit)
    times = np.empty(int(index[-1]) if n_units else 0, dtype=np.float64)
    flat = counts.reshape(n_per_unit, n_units)
    out = 0
    for u0 in range(0, n_units, group_units):
        # adjacent units share cache lines: copy a group of columns at once, then walk each unit contiguously
        columns = np.ascontiguousarray(flat[:, u0 : u0 + group_units].T)
        for offset, cells_of_unit in enumerate(columns):
            for b0 in range(0, n_per_unit, block_bins):
                cells = cells_of_unit[b0 : b0 + block_bins]
                nonzero = np.flatnonzero(cells)
                if nonzero.size == 0:
                    continue
                k = integer_counts(cells[nonzero])
                if placement is not None:
                    chunk = placement.place(first_unit + u0 + offset, bin_starts[b0 + nonzero], bin_width, k)
                    times[out : out + len(chunk)] = chunk
                    out += len(chunk)
                    continue
                cum_k = np.cumsum(k)
                # per spike: its bin's start, its rank j (1..k) inside the bin, and the bin's count k
                totals = np.repeat(k, k)
                j = np.arange(1, len(totals) + 1, dtype=np.int64) - np.repeat(cum_k - k, k)
                chunk = np.repeat(bin_starts[b0 + nonzero], k) + bin_width * j / (totals + 1)
                times[out : out + len(chunk)] = chunk
                out += len(chunk)
    # np.round(times, 6) in place: the same multiply, round-half-even, divide
    np.multiply(times, 1e6, out=times)
    np.rint(times, out=times)
    np.divide(times, 1e6, out=times)
    return times, index


def spike_arrays_to_counts(
    spike_times: np.ndarray,
    index: np.ndarray,
    trial_starts: np.ndarray,
    n_bins: int,
    bin_width: float,
) -> np.ndarray:
    """Bin a Units table's flat spike times back into (trial, time, unit) counts (trials sorted by start).

    Spikes before the first trial, or outside [start, start + n_bins * bin_width) of their trial, are ignored.
    """
    spike_times = np.asarray(spike_times, dtype=np.float64)
    index = np.asarray(index, dtype=np.int64)
    trial_starts = np.asarray(trial_starts, dtype=np.float64)
    n_units, n_trials = len(index), len(trial_starts)
    unit = np.repeat(np.arange(n_units), np.diff(index, prepend=0))
    trial = np.searchsorted(trial_starts, spike_times, side="right") - 1
    inside = trial >= 0
    offset = spike_times - trial_starts[np.clip(trial, 0, None)]
    bins = np.floor(offset / bin_width).astype(np.int64)
    inside &= (bins >= 0) & (bins < n_bins)
    flat = (trial[inside] * n_bins + bins[inside]) * n_units + unit[inside]
    counts = np.bincount(flat, minlength=n_trials * n_bins * n_units)
    return counts.reshape(n_trials, n_bins, n_units)


def spike_time_blocks(
    read_counts: Callable[[slice, slice], np.ndarray],
    shape: tuple[int, int, int],
    bin_width: float,
    trial_starts: np.ndarray,
    unit_totals: np.ndarray,
    *,
    budget_cells: int = 1 << 22,
    on_units: Callable[[int], None] | None = None,
    placement: str = "even",
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """The flat, unit-major spike times of counts read block by block, by `counts_to_spike_arrays` (the one rule).

    Why: a Units table's spike_times for 100,000 trials do not fit in memory; this yields them in order while
    holding about `budget_cells` counts at once. `read_counts(units, trials)` returns (trials, time, units)
    counts; all trials of several units are read at once when they fit the budget, else one unit in trial blocks
    (trials lie one after another, so each unit's times stay sorted). Each unit's spike total must equal
    `unit_totals` (the index written up front); `on_units(k)` reports k more units done. `placement` "uniform"
    draws the times inside their bins from `seed` (a fresh `UniformPlacement` each time the blocks are read).
    """
    n_trials, n_bins, n_units = shape
    placer = UniformPlacement(seed) if check_placement(placement) == "uniform" else None
    starts = np.asarray(trial_starts, dtype=np.float64)
    group = int(min(n_units, max(1, budget_cells // max(n_trials * n_bins, 1))))
    trials_per_block = n_trials if group > 1 else int(max(1, budget_cells // max(n_bins, 1)))
    for u0 in range(0, n_units, group):
        u1 = min(u0 + group, n_units)
        made = np.zeros(u1 - u0, dtype=np.int64)
        for t0 in range(0, n_trials, trials_per_block):
            t1 = min(t0 + trials_per_block, n_trials)
            times, index = counts_to_spike_arrays(read_counts(slice(u0, u1), slice(t0, t1)), bin_width, starts[t0:t1],
                                                  placement=placer, first_unit=u0)
            made += np.diff(index, prepend=0)
            if times.size:
                yield times
        if not np.array_equal(made, unit_totals[u0:u1]):
            raise SessionContentError(f"units {u0}..{u1 - 1} gave {made.tolist()} spikes, not the "
                                      f"{np.asarray(unit_totals[u0:u1]).tolist()} counted before the write; the "
                                      "generated counts changed while writing, generate them again")
        if on_units is not None:
            on_units(u1 - u0)
