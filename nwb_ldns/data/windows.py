"""Cut a session into trials: windows from a trial table (aligned or not), or fixed windows over the recording.

A `Windows` holds, per trial, the absolute time of its alignment point and how many valid bins it has; bin k of
trial w starts at align_time[w] + offset + k * bin_width. Trials shorter than the longest are right-padded (the
reader's `mask` is False there). Splits come from the table's `split` column or from a seeded 70/10/20 draw.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from typing import Callable

import numpy as np

from nwb_ldns.data import tables
from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.limits import check_session_size

SPLIT_VALUES = ("train", "val", "test", "generated")
# The trials column that holds the split: `data_split` in the files we write (a column named `split` shadows
# pynapple's IntervalSet.split(), so `trials[trials.split == "train"]` fails there); `split` in older files of ours
# and in the NLB files (MC_Maze), read the same way.
SPLIT_COLUMNS = ("data_split", "split")
SPLIT_COLUMN = SPLIT_COLUMNS[0]
_EPS = 1e-6  # tolerance (in bins) when a duration is an integer number of bins up to float rounding
# Overlapping trials of a start/stop table: real tables have a few short overlaps (trial intervals padded beyond
# the next trial's start), which are kept with a warning; a table where a trial overlaps its successor by at least
# this fraction of the shorter trial, or where more than OVERLAP_MAX_SHARE of the trials (and more than one)
# overlap, is not a set of trials (wrong stop times, duplicated rows, events mistaken for trials) and is refused.
OVERLAP_MAX_FRACTION = 0.5
OVERLAP_MAX_SHARE = 0.1


@dataclass
class Windows:
    """Per-trial alignment and lengths, plus how they were chosen (for the Dataset attrs)."""

    trial_ids: np.ndarray
    align_time: np.ndarray
    n_bins: np.ndarray
    offset: float
    bin_width: float
    rows: np.ndarray | None = None  # row positions in the trial table (None for --window-length windows)
    table_path: str = ""
    align: str = ""
    window: tuple[float, float] | None = None
    split: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_max(self) -> int:
        return int(self.n_bins.max()) if len(self.n_bins) else 0

    def valid(self) -> np.ndarray:
        """(trial, time) bool: bins inside each trial."""
        return np.arange(self.n_max)[None, :] < self.n_bins[:, None]

    def bin_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, dest) of the valid bins in time order of each trial; dest = trial * n_max + bin."""
        valid = self.valid()
        trial, k = np.nonzero(valid)
        starts = self.align_time[trial] + self.offset + k * self.bin_width
        order = np.argsort(starts, kind="stable")
        return starts[order], (trial * self.n_max + k)[order]

    def subset(self, keep: np.ndarray) -> "Windows":
        """The windows where `keep` is True."""
        return Windows(
            trial_ids=self.trial_ids[keep],
            align_time=self.align_time[keep],
            n_bins=self.n_bins[keep],
            offset=self.offset,
            bin_width=self.bin_width,
            rows=None if self.rows is None else self.rows[keep],
            table_path=self.table_path,
            align=self.align,
            window=self.window,
            split=None if self.split is None else self.split[keep],
            notes=self.notes,
        )


def n_bins_in(duration: np.ndarray | float, bin_width: float) -> np.ndarray:
    """Whole bins that fit in a duration, tolerating float rounding (0.32 s / 0.01 s -> 32)."""
    return np.floor(np.asarray(duration, dtype=np.float64) / bin_width + _EPS).astype(np.int64)


def _float_column(table, name: str, table_path: str) -> np.ndarray:
    values = tables.flat_data(tables.column(table, name))
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        raise OptionError(f"column {name!r} of {table_path} is not numeric; align on a time column (seconds)") from None


def trial_windows(
    table,
    table_path: str,
    *,
    bin_width: float,
    align: str | None,
    window: tuple[float, float] | None,
    recording: tuple[float, float],
    split_seed: int,
    n_units: int = 1,
    split_rule: Callable[[np.ndarray], np.ndarray] | None = None,
    drop_outside: bool = False,
) -> Windows:
    """Windows from a trial table: [start, stop) of each trial, or `window` around `align` (default start_time).

    `n_units` sizes the memory check (nwb_ldns.limits) made before any per-bin array is allocated. `split_rule`
    maps the table's split labels (all rows, table order) to the labels used (a recipe's rule, e.g. the LDNS
    monkey split); `drop_outside` drops (with a note) windows that leave the recording instead of refusing them.
    """
    n_rows = len(table)
    if n_rows == 0:
        raise SessionContentError(
            f"trial table {table_path} has no rows (empty trials); choose another table with --trials-table "
            "or cut fixed windows with --window-length SECONDS"
        )
    ids = tables.flat_data(table.id).astype(np.int64)
    start = _float_column(table, "start_time", table_path)
    stop = _float_column(table, "stop_time", table_path)
    bad = np.flatnonzero(stop < start)
    if len(bad):
        raise SessionContentError(
            f"trial table {table_path} has stop_time < start_time in rows with ids {ids[bad][:10].tolist()}; "
            "fix those rows in the file (or choose another table with --trials-table)"
        )
    if align is not None and window is None:
        raise OptionError(
            f"--align {align} needs --window START STOP (seconds relative to {align}), e.g. --window -0.25 0.45"
        )
    keep = np.isfinite(start) & np.isfinite(stop)
    notes: list[str] = []
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} trials whose start_time or stop_time is NaN")
    split, has_split = table_splits(table, n_rows, split_seed)
    if split_rule is not None:
        if not has_split:
            raise SessionContentError(f"trial table {table_path} has no split column, which this reading derives "
                                      "its train/val/test split from; use --recipe none")
        split = split_rule(split)
    if has_split:
        dropped = keep & ~np.isin(split, SPLIT_VALUES)
        if dropped.any():
            values = sorted(set(split[dropped].tolist()))
            notes.append(f"dropped {int(dropped.sum())} trials whose split is {values} (not train/val/test)")
            keep &= ~dropped
    if window is None:
        align_name = "start_time"
        align_time = start
        offset = 0.0
        recorded = _recorded_alignment(table, start)
        if recorded is not None:  # files written by nwb-ldns export keep each trial's time-0 in `align_time`
            align_name, align_time, offset = "align_time", recorded, round(float(np.median(start - recorded)), 9)
        zero = keep & (stop == start)
        if zero.any():
            notes.append(f"dropped {int(zero.sum())} zero-length trials (stop_time == start_time)")
            keep &= ~zero
        longest = float(np.max(np.where(keep, stop - start, 0.0)))
        _check_grid(int(keep.sum()), longest / bin_width, n_units,
                    f"choose a larger --bin-width (now {bin_width:g} s; 0.01 is typical) or shorter trials "
                    "(--align COLUMN --window START STOP)")
        n_bins = n_bins_in(stop - start, bin_width)
        short = keep & (n_bins < 1)
        if short.any():
            notes.append(f"dropped {int(short.sum())} trials shorter than one bin ({bin_width} s)")
            keep &= ~short
        notes += _overlap_notes(start, stop, keep, ids, table_path)
    else:
        w0, w1 = float(window[0]), float(window[1])
        if not w1 > w0:
            raise OptionError(
                f"--window {w0} {w1}: STOP must be greater than START (seconds relative to the alignment)"
            )
        _check_grid(int(keep.sum()), (w1 - w0) / bin_width, n_units,
                    f"choose a larger --bin-width (now {bin_width:g} s; 0.01 is typical) or a shorter --window")
        n = int(n_bins_in(w1 - w0, bin_width))
        if n < 1:
            raise OptionError(
                f"--window {w0} {w1} is shorter than one bin ({bin_width} s); widen it or lower --bin-width"
            )
        align_name = align or "start_time"
        if not tables.has_column(table, align_name):
            numeric = [c for c in tables.scalar_columns(table) if _is_numeric(table, c)]
            raise OptionError(
                f"trial table {table_path} has no column {align_name!r} to align on; --align must be one of: "
                f"{', '.join(numeric)}"
            )
        align_time = _float_column(table, align_name, table_path)
        missing = keep & ~np.isfinite(align_time)
        if missing.any():
            notes.append(f"dropped {int(missing.sum())} trials whose {align_name} is NaN")
            keep &= ~missing
        offset = w0
        n_bins = np.full(n_rows, n, dtype=np.int64)
        begin = align_time + w0
        end = align_time + w0 + n * bin_width
        outside = keep & ((begin < recording[0] - 1e-9) | (end > recording[1] + 1e-9))
        if outside.any() and drop_outside:
            notes.append(f"dropped {int(outside.sum())} trials whose window leaves the recording")
            keep &= ~outside
        elif outside.any():
            raise SessionContentError(
                f"--window {w0} {w1} around {align_name} runs outside the recording "
                f"[{recording[0]:.3f}, {recording[1]:.3f}] s for trials with ids {ids[outside][:10].tolist()}; "
                "choose a smaller --window"
            )
    result = Windows(
        trial_ids=ids,
        align_time=np.asarray(align_time, dtype=np.float64),
        n_bins=np.asarray(n_bins, dtype=np.int64),
        offset=float(offset),
        bin_width=bin_width,
        rows=np.arange(n_rows),
        table_path=table_path,
        align=align_name,
        window=None if window is None else (float(window[0]), float(window[1])),
        notes=notes,
    )
    result.split = split
    if not keep.any():
        raise SessionContentError(
            f"no usable trials left in {table_path} (all were dropped: {'; '.join(notes) or 'no rows'}); "
            "check --trials-table, --align and the table's split column"
        )
    return result.subset(keep)


def _check_grid(n_trials: float, bins_per_trial: float, n_units: int, fix: str) -> None:
    """Refuse trials x bins x units that would not fit in memory, before n_bins_in or any per-bin array.

    Why before n_bins_in: a bin count above 2**63 (a duration over a denormal --bin-width) would wrap around when
    cast to int64 instead of failing.
    """
    from nwb_ldns.data.counts_cache import counts_in_memory
    from nwb_ldns.limits import SESSION_BYTES_PER_BIN, check_fits, count_text

    n_bins = float(np.floor(bins_per_trial + _EPS))
    if counts_in_memory(n_trials, n_bins, n_units):
        check_session_size(n_trials, n_bins, n_units, fix)
    else:  # spike times beyond the memory budget are binned to the on-disk counts cache: only per-bin arrays
        check_fits(float(n_trials) * n_bins * SESSION_BYTES_PER_BIN,
                   f"{count_text(n_trials)} trials x {count_text(n_bins)} bins x {count_text(n_units)} units", fix)


def _overlap_notes(start: np.ndarray, stop: np.ndarray, keep: np.ndarray, ids: np.ndarray,
                   table_path: str) -> list[str]:
    """A warning for a few short overlaps between consecutive kept trials; SessionContentError for gross ones."""
    rows = np.flatnonzero(keep)
    if len(rows) < 2:
        return []
    rows = rows[np.argsort(start[rows], kind="stable")]
    previous, following = rows[:-1], rows[1:]
    overlap = stop[previous] - start[following]
    shorter = np.minimum(stop[previous] - start[previous], stop[following] - start[following])
    bad = overlap > 1e-9 * np.maximum(1.0, np.abs(start[following]))
    if not bad.any():
        return []
    fraction = float(np.max(overlap[bad] / shorter[bad]))
    listed = ids[following[bad]][:10].tolist()
    where = (f"{int(bad.sum())} of {len(rows)} trials of {table_path} start before the previous trial stops "
             f"(ids {listed}{' ...' if bad.sum() > 10 else ''}; by up to {float(overlap[bad].max()):.3g} s, "
             f"{fraction:.0%} of the shorter trial)")
    if fraction >= OVERLAP_MAX_FRACTION or bad.sum() > max(1.0, OVERLAP_MAX_SHARE * len(rows)):
        raise SessionContentError(
            f"overlapping trials: {where}; fix start_time/stop_time in the table, or cut trials that may overlap "
            "with --align COLUMN --window START STOP (or fixed windows with --window-length SECONDS)"
        )
    return [f"trial windows overlap: {where}; spikes in an overlap are counted in both trials"]


def _recorded_alignment(table, start: np.ndarray) -> np.ndarray | None:
    """The table's `align_time` column when it sits a constant offset before/after start_time, else None."""
    if not tables.has_column(table, "align_time") or not _is_numeric(table, "align_time"):
        return None
    align = tables.flat_data(tables.column(table, "align_time")).astype(np.float64)
    difference = start - align
    if len(align) == 0 or not np.all(np.isfinite(difference)):
        return None
    if np.ptp(difference) > 1e-6:
        return None
    return align


def _is_numeric(table, name: str) -> bool:
    dtype = getattr(tables.column(table, name).data, "dtype", None)
    return dtype is not None and np.issubdtype(np.dtype(dtype), np.number)


def table_splits(table, n_rows: int, seed: int) -> tuple[np.ndarray, bool]:
    """The table's split column (`data_split`, else `split`; as str) when present, else a seeded 70/10/20
    train/val/test draw."""
    for name in SPLIT_COLUMNS:
        if tables.has_column(table, name):
            col = tables.column(table, name)
            if tables.is_scalar_column(col):
                return np.char.strip(tables.scalar_values(col).astype(str)), True
    return random_splits(n_rows, seed), False


def random_splits(n: int, seed: int) -> np.ndarray:
    """Seeded 70/10/20 split: int(0.7 n) train, int(0.1 n) val, the rest test, in a random order."""
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(0.7 * n), int(0.1 * n)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "val"
    split[order[n_train + n_val :]] = "test"
    return split.astype(str)


def fixed_windows(window_length: float, bin_width: float, span: tuple[float, float], split_seed: int,
                  n_units: int = 1) -> Windows:
    """Consecutive non-overlapping windows of `window_length` seconds over the recording span.

    The number of windows and bins is checked against memory (nwb_ldns.limits) before any array is allocated.
    """
    if not window_length > 0:
        raise OptionError(f"--window-length must be positive seconds, got {window_length}")
    bins_per_window = float(np.floor(window_length / bin_width + _EPS))
    if bins_per_window < 1:
        raise OptionError(f"--window-length {window_length} is shorter than one bin ({bin_width} s); lengthen it")
    n_windows = float(np.floor((span[1] - span[0]) / (bins_per_window * bin_width) + _EPS))
    _check_grid(n_windows, bins_per_window, n_units,
                f"the recording spans {span[0]:.6g} to {span[1]:.6g} s (its first to last spike or observed "
                f"interval): look for stray times far from the others, or choose a larger --bin-width (now "
                f"{bin_width:g} s) or a longer --window-length")
    n = int(bins_per_window)
    length = n * bin_width
    count = int(n_windows)
    if count < 1:
        raise SessionContentError(
            f"the recording ({span[1] - span[0]:.3f} s) is shorter than --window-length {window_length}; "
            "choose a shorter --window-length"
        )
    starts = span[0] + np.arange(count) * length
    return Windows(
        trial_ids=np.arange(count, dtype=np.int64),
        align_time=starts,
        n_bins=np.full(count, n, dtype=np.int64),
        offset=0.0,
        bin_width=bin_width,
        table_path="",
        align="",
        window=(0.0, float(window_length)),
        split=random_splits(count, split_seed),
    )


def check_disjoint_warning(windows: Windows) -> None:
    """Warn when --align/--window windows overlap (spikes then count in several trials; legitimate for aligned
    windows). Trials from a table's start/stop are checked, with their ids, by trial_windows."""
    if windows.window is None:
        return
    starts = windows.align_time + windows.offset
    order = np.argsort(starts)
    ends = starts + windows.n_bins * windows.bin_width
    if len(order) > 1 and np.any(starts[order][1:] < ends[order][:-1] - 1e-9):
        warnings.warn(
            "trial windows overlap: spikes in the overlap are counted in every trial that covers them", stacklevel=3
        )
