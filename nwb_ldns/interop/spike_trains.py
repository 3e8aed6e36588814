"""Spike trains and trial intervals of a session, the common ground of the pynapple and spikeinterface bridges.

From an NWB file the Units table's own spike times are used (nothing is binned, nothing is lost); from a session
Dataset (load_session, LDNSModel.sample) the counts become spike times by the project's even rule
(`nwb_ldns.export.spikes.counts_to_spike_arrays`), at the absolute times the Dataset's `align_time` gives; trials
without a timeline of their own (generated ones, all at align_time 0) are laid out as `write_synthetic` writes them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import xarray as xr

from nwb_ldns.data import tables
from nwb_ldns.data.windows import SPLIT_COLUMN, SPLIT_COLUMNS
from nwb_ldns.errors import OptionError, SessionContentError

Source = Union[str, "os.PathLike[str]", xr.Dataset]
DATASET_RESOLUTION = 1e-6  # the even rule rounds spike times to 1 us
TRIAL_SKIP = ("start_time", "stop_time", "id", "tags", "timeseries")
UNIT_SKIP = ("spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean", "waveform_sd",
             "waveforms", "id")


@dataclass
class SpikeTrains:
    """Per-unit sorted spike times (s) and the trials as intervals, with their table columns."""

    unit_ids: np.ndarray
    times: list[np.ndarray]
    unit_columns: dict[str, np.ndarray] = field(default_factory=dict)
    trial_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trial_stop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trial_columns: dict[str, np.ndarray] = field(default_factory=dict)
    resolution: float | None = None  # spike-time precision (s) when known: 1e-6 for the even rule
    source: str = ""

    def span(self) -> tuple[float, float]:
        """(first, last) time covered by the spikes and the trials; (0, 0) when there is nothing."""
        firsts = [0.0, *(float(t[0]) for t in self.times if len(t)), *np.asarray(self.trial_start).tolist()]
        lasts = [0.0, *(float(t[-1]) for t in self.times if len(t)), *np.asarray(self.trial_stop).tolist()]
        return min(firsts), max(lasts)


def spike_trains(source: Source, *, units_table: str = "units", trials_table: str = "trials") -> SpikeTrains:
    """The spike trains and trials of an NWB file (path or URL) or of a session Dataset."""
    if isinstance(source, xr.Dataset):
        return _from_dataset(source)
    return _from_file(source, units_table, trials_table)


def _from_file(path: str | os.PathLike, units_name: str, trials_name: str) -> SpikeTrains:
    from nwb_ldns.data.opening import open_nwb

    with open_nwb(path) as opened:
        objects = tables.catalog(opened.nwbfile)
        units_found = [p for p, obj in objects.items() if tables.is_units_table(obj)]
        if not units_found:
            raise SessionContentError(
                f"{opened.source_path} has no Units table with spike times; for binned counts read the session "
                "with load_session(path, counts_series=...) and pass that Dataset instead")
        _, units = tables.resolve({p: objects[p] for p in units_found}, units_name, "Units table", units_found,
                                  "units_table=")
        flat, ends = tables.ragged(units, "spike_times")
        flat = np.asarray(flat, dtype=np.float64)
        times = [np.sort(t) for t in np.split(flat, ends[:-1])] if len(ends) else []
        unit_ids = tables.flat_data(units.id).astype(np.int64)
        unit_columns = {name: tables.scalar_values(tables.column(units, name))
                        for name in tables.scalar_columns(units, skip=UNIT_SKIP)}
        resolution = getattr(units, "resolution", None)
        known = resolution is not None and np.isfinite(resolution) and resolution > 0
        resolution = float(resolution) if known else None
        trains = SpikeTrains(unit_ids, times, unit_columns, resolution=resolution, source=opened.source_path)
        trial_tables = [p for p, obj in objects.items() if tables.is_trial_table(obj)]
        try:
            _, trials = tables.resolve({p: objects[p] for p in trial_tables}, trials_name, "trial table",
                                       trial_tables, "trials_table=")
        except OptionError:
            if trials_name != "trials":
                raise
            trials = None  # a file without trials: spike trains only
        if trials is not None:
            _read_trials(trains, trials)
    return trains


def _read_trials(trains: SpikeTrains, trials) -> None:
    trains.trial_start = tables.flat_data(tables.column(trials, "start_time")).astype(np.float64)
    trains.trial_stop = tables.flat_data(tables.column(trials, "stop_time")).astype(np.float64)
    columns: dict[str, np.ndarray] = {"trial_id": tables.flat_data(trials.id).astype(np.int64)}
    for name in tables.scalar_columns(trials, skip=TRIAL_SKIP):
        columns[name] = tables.scalar_values(tables.column(trials, name))
    if SPLIT_COLUMN not in columns and SPLIT_COLUMNS[1] in columns:  # older files: `split` shadows IntervalSet.split
        columns = {(SPLIT_COLUMN if k == SPLIT_COLUMNS[1] else k): v for k, v in columns.items()}
    trains.trial_columns = columns


def _from_dataset(ds: xr.Dataset) -> SpikeTrains:
    from nwb_ldns.export.spikes import counts_to_spike_arrays

    bin_width = float(ds.attrs["bin_width"])
    mask = ds["mask"].values
    starts = ds["align_time"].values.astype(np.float64) + float(ds["time"].values[0])
    if len(np.unique(starts)) < len(starts):  # generated trials all sit at align_time 0: no timeline yet
        from nwb_ldns.export.synthetic import trial_layout

        starts = trial_layout(len(starts), mask.shape[1], bin_width, None)  # as write_synthetic lays them out
    n_valid = (mask * np.arange(1, mask.shape[1] + 1)[None, :]).max(axis=1)  # 1 + last valid bin
    counts = np.where(mask[:, :, None], ds["counts"].values, 0)
    flat, ends = counts_to_spike_arrays(counts, bin_width, starts)
    times = [np.sort(t) for t in np.split(flat, ends[:-1])]  # overlapping windows interleave their spikes
    unit_columns = {str(n)[len("unit_"):]: ds[n].values for n in ds.data_vars
                    if str(n).startswith("unit_") and ds[n].dims == ("unit",)}
    trial_columns: dict[str, np.ndarray] = {"trial_id": ds["trial"].values.astype(np.int64),
                                            SPLIT_COLUMN: ds["split"].values.astype(str)}
    for name in ds.data_vars:
        column = str(name)[len("trial_"):]
        if str(name).startswith("trial_") and ds[name].dims == ("trial",) and column not in trial_columns:
            trial_columns[column] = ds[name].values
    return SpikeTrains(ds["unit"].values.astype(np.int64), times, unit_columns, starts,
                       np.round(starts + n_valid * bin_width, 9), trial_columns, DATASET_RESOLUTION,
                       str(ds.attrs.get("source_path", "")))


def sorted_trials(trains: SpikeTrains) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(start, stop, columns) in start order, with each stop clipped to the next trial's start.

    Why: pynapple's IntervalSet joins overlapping intervals and then drops every metadata column; trials of real
    tables (padded intervals) and windows around alignment points can overlap, so the overlap is cut instead,
    with one warning that says how many trials were cut.
    """
    order = np.argsort(trains.trial_start, kind="stable")
    start, stop = trains.trial_start[order], trains.trial_stop[order].copy()
    columns = {name: np.asarray(values)[order] for name, values in trains.trial_columns.items()}
    if len(start) > 1:
        overlapping = stop[:-1] > start[1:]
        if overlapping.any():
            stop[:-1] = np.where(overlapping, start[1:] - 1e-6, stop[:-1])
            warnings.warn(f"{int(overlapping.sum())} of {len(start)} trials overlap the next one; their intervals end "
                          "1 us before the next trial starts (an IntervalSet cannot hold overlapping intervals)",
                          UserWarning, stacklevel=3)
    if len(start) and not (stop > start).all():
        raise SessionContentError(f"{trains.source or 'the session'}: trials with the same start time or no duration "
                                  "cannot be intervals; remove the duplicated trials or use other windows")
    return start, stop, columns


def metadata_name(name: str, taken: set[str], prefix: str) -> str:
    """A column name that does not shadow an attribute of the target object (`rate`, `split`, `start`...)."""
    if name not in taken:
        return name
    candidate = f"{prefix}{name}"
    return candidate if candidate not in taken else f"{candidate}_column"


def as_metadata(columns: dict[str, Any], taken: set[str], prefix: str) -> dict[str, np.ndarray]:
    """Columns renamed away from `taken`, with str values as plain str arrays."""
    out = {}
    for name, values in columns.items():
        values = np.asarray(values)
        out[metadata_name(name, taken, prefix)] = values.astype(str) if values.dtype.kind in "OSU" else values
    return out
