"""`load_session`: read an NWB session into the interchange xarray Dataset (see nwb_ldns/data/schema.py).

Counts come from a Units table (spike times binned here) or from a binned-count TimeSeries; trials come from a
trial-like table or from fixed windows over the whole recording.

Bins outside a unit's `obs_intervals` (bins whose centre lies in no interval of that unit): when no selected unit
observes a bin, its `mask` is set False (and its counts 0); when only some units observe it, the other units'
counts there are set to 0 and a warning says how many (unit, bin) pairs that touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr

from nwb_ldns.data import binning, counts_cache, nlb, tables
from nwb_ldns.data.counts_cache import LazyCounts
from nwb_ldns.data.opening import OpenedSource, open_nwb
from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.data.selection import select_rows, unit_selection
from nwb_ldns.data.spike_stream import BYTES_PER_SPIKE, SpikeTimes, check_numeric_dtype
from nwb_ldns.data.windows import SPLIT_COLUMNS, Windows, check_disjoint_warning, fixed_windows, trial_windows
from nwb_ldns.errors import OptionError, OutputExistsError, OutputWriteError, SessionContentError
from nwb_ldns.limits import check_session_size

DEFAULT_BIN_WIDTH = 0.01


def load_session(
    source: str | os.PathLike,
    *,
    units_table: str = "units",
    bin_width: float | None = None,
    trials_table: str = "trials",
    align: str | None = None,
    window: tuple[float, float] | None = None,
    window_length: float | None = None,
    unit_filter: str | None = None,
    counts_series: str | None = None,
    behavior: str | None = None,
    split_seed: int = 42,
    recipe: str | None = None,
    channel_filter: str | None = None,
) -> xr.Dataset:
    """Read an NWB session (local .nwb, .nwb.zarr, or http(s) URL) into a session Dataset.

    `recipe`: None (the generic reader, options as given), "mc_maze" (the LDNS reading of the NLB MC_Maze file,
    nwb_ldns.data.nlb: options left at None take the recipe's values) or "auto" (mc_maze for a file in that
    layout when no reading option is given, else generic).

    `bin_width=None`: with `counts_series` the series' own sample spacing; otherwise the bin width of an ndx-ldns
    provenance object in the file (any lab_meta_data with a `bin_width` field), else 0.01 s. `window_length` cuts
    fixed windows from the whole recording instead of trials. `channel_filter` (`--channels`, e.g.
    "location==area 6v") keeps the channels of `counts_series` whose electrodes-table rows match (the series'
    `electrodes` region, else column j = row j of the file's electrodes table).
    Warnings (not errors) report dropped trials
    (split not train/val/test/generated, NaN alignment, no observed bins) and overlapping trial windows.
    """
    if bin_width is not None and not float(bin_width) > 0:
        raise OptionError(f"--bin-width must be a positive number of seconds, got {bin_width}")
    if window is not None and len(window) != 2:
        raise OptionError(f"--window takes two numbers START STOP (seconds), got {window!r}")
    if recipe not in RECIPES:
        raise OptionError(f"unknown --recipe {recipe!r}; choose one of: {', '.join(str(r) for r in RECIPES)}")
    explicit = {"bin_width": bin_width, "align": align, "window": window, "window_length": window_length,
                "unit_filter": unit_filter, "counts_series": counts_series, "behavior": behavior,
                "channel_filter": channel_filter}
    with open_nwb(source) as opened:
        if recipe == "auto":
            untouched = all(v is None for v in explicit.values()) and units_table == "units" and trials_table == "trials"
            recipe = "mc_maze" if untouched and nlb.looks_like_mc_maze(opened.nwbfile) else None
        rules = _Rules()
        if recipe == "mc_maze":
            if window_length is not None or counts_series is not None:
                raise OptionError("--recipe mc_maze reads trials around move_onset_time from the Units table; drop "
                                  "--window-length/--counts-series or use --recipe none")
            for key, value in nlb.MC_MAZE.reader_options().items():
                explicit[key] = value if explicit[key] is None else explicit[key]
            bin_width, align, window, behavior = (explicit[k] for k in ("bin_width", "align", "window", "behavior"))
            rules = _Rules(split_rule=nlb.ldns_monkey_split, behavior_lag=nlb.MC_MAZE.behavior_lag,
                           behavior_scale=nlb.MC_MAZE.behavior_scale, complete_trials_only=True)
        reader = _Reader(opened, split_seed=split_seed, rules=rules)
        ds = reader.read(
            units_table=units_table,
            bin_width=None if bin_width is None else float(bin_width),
            trials_table=trials_table,
            align=align,
            window=None if window is None else (float(window[0]), float(window[1])),
            window_length=None if window_length is None else float(window_length),
            unit_filter=unit_filter,
            counts_series=counts_series,
            behavior=behavior,
            channel_filter=channel_filter,
        )
    return nlb.finish_mc_maze(ds) if recipe == "mc_maze" else ds


RECIPES = (None, "auto", "mc_maze")


@dataclass(frozen=True)
class _Rules:
    """How a recipe changes the generic reading (defaults: the generic reader)."""

    split_rule: Callable[[np.ndarray], np.ndarray] | None = None  # table split labels -> train/val/test labels
    behavior_lag: float = 0.0  # s; behaviour is read on the bins shifted this much later
    behavior_scale: float = 1.0  # multiplies the behaviour values (e.g. mm/s -> m/s)
    complete_trials_only: bool = False  # drop trials with any unobserved bin or a window outside the recording


def provenance_bin_width(nwbfile) -> float | None:
    """The `bin_width` of a lab_meta_data object (ndx-ldns provenance), if any has one."""
    for meta in (nwbfile.lab_meta_data or {}).values():
        value = getattr(meta, "bin_width", None)
        if value is None and hasattr(meta, "fields"):
            value = meta.fields.get("bin_width")
        try:
            if value is not None and float(value) > 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


@dataclass
class _Counts:
    """What either counts source (Units or TimeSeries) hands back."""

    counts: np.ndarray | None  # (trial, time, unit) float32; None until a Units source bins the kept trials
    observed: np.ndarray  # (trial, time) bool
    unit_ids: np.ndarray
    unit_vars: dict[str, np.ndarray]
    units_object_id: str


class _Reader:
    def __init__(self, opened: OpenedSource, split_seed: int, rules: "_Rules" = _Rules()) -> None:
        self.opened = opened
        self.rules = rules
        self.nwbfile = opened.nwbfile
        self.split_seed = split_seed
        self.objects = tables.catalog(self.nwbfile)
        self._sha256: str | None = None

    def sha256(self) -> str:
        """sha256 of the local source (hashed once per read: the attrs and the counts cache key both use it)."""
        if self._sha256 is None:
            self._sha256 = self.opened.sha256()
        return self._sha256

    # -- discovery ---------------------------------------------------------------------------------------------
    def paths(self, predicate) -> list[str]:
        return [path for path, obj in self.objects.items() if predicate(obj)]

    def units(self, name: str) -> tuple[str, Any]:
        candidates = self.paths(tables.is_units_table)
        if not candidates:
            series = self.paths(tables.is_count_series)
            hint = (
                f"if it holds binned counts pass --counts-series with one of: {', '.join(series)}"
                if series
                else "it has no binned-count TimeSeries either, so it holds no spiking data nwb-ldns can use"
            )
            raise SessionContentError(f"{self.opened.source_path} has no Units table (spike times); {hint}")
        return tables.resolve(self.objects, name, "Units table", candidates, "--units-table")

    def trial_table(self, name: str) -> tuple[str, Any]:
        candidates = self.paths(tables.is_trial_table)
        key = name.strip("/")
        if key in self.objects or any(p.rsplit("/", 1)[-1] == key for p in self.objects):
            path, obj = tables.resolve(self.objects, name, "trial table", candidates, "--trials-table")
            if not tables.is_trial_table(obj):
                raise OptionError(
                    f"{path} is not a trial table (it needs start_time and stop_time columns); --trials-table must "
                    f"name one of: {', '.join(candidates) or 'none'}"
                )
            return path, obj
        listing = ", ".join(candidates) if candidates else "none"
        raise SessionContentError(
            f"no trial table {name!r} in {self.opened.source_path}; tables with start_time/stop_time: {listing}. "
            "Pass --trials-table NAME, or --window-length SECONDS to cut fixed windows from the whole recording"
        )

    def series(self, name: str, option: str, predicate=tables.is_time_series) -> tuple[str, Any]:
        candidates = self.paths(predicate)
        path, obj = tables.resolve(self.objects, name, "TimeSeries", candidates, option)
        if not tables.is_time_series(obj):
            listing = ", ".join(candidates) or "none"
            raise OptionError(f"{path} is not a TimeSeries; {option} must name one of: {listing}")
        return path, obj

    # -- main --------------------------------------------------------------------------------------------------
    def read(
        self,
        *,
        units_table: str,
        bin_width: float | None,
        trials_table: str,
        align: str | None,
        window: tuple[float, float] | None,
        window_length: float | None,
        unit_filter: str | None,
        counts_series: str | None,
        behavior: str | None,
        channel_filter: str | None = None,
    ) -> xr.Dataset:
        if channel_filter and not counts_series:
            raise OptionError("--channels selects channels of a binned-count series: add --counts-series SERIES, or "
                              "use --units-filter to select the units of a Units table")
        if counts_series:
            if unit_filter:
                raise OptionError("--units-filter applies to Units tables, not to --counts-series; use --channels "
                                  "to select channels of a counts series")
            source = _SeriesSource(self, counts_series, bin_width, channel_filter)
        else:
            source = _UnitsSource(self, units_table, unit_filter)
        width = source.bin_width if counts_series and bin_width is None else bin_width
        if width is None:
            width = provenance_bin_width(self.nwbfile) or DEFAULT_BIN_WIDTH
        source.check_bin_width(width)

        if window_length is not None:
            if window is not None or align is not None:
                raise OptionError(
                    "--window-length cuts windows from the whole recording; do not combine it with --align/--window"
                )
            windows = fixed_windows(window_length, width, source.span(), self.split_seed, n_units=source.n_units)
            table = None
        else:
            table_path, table = self.trial_table(trials_table)
            windows = trial_windows(
                table,
                table_path,
                bin_width=width,
                align=align,
                window=window,
                recording=source.recording(table),
                split_seed=self.split_seed,
                n_units=source.n_units,
                split_rule=self.rules.split_rule,
                drop_outside=self.rules.complete_trials_only,
            )
        check_disjoint_warning(windows)

        if isinstance(source, _UnitsSource):
            source.cache_options = {"bin_width": width, "trials_table": trials_table, "align": align,
                                    "window": window, "window_length": window_length, "unit_filter": unit_filter,
                                    "split_seed": self.split_seed,
                                    "complete_trials_only": self.rules.complete_trials_only}
        result = source.counts(windows)
        all_windows, kept = windows, None
        valid = windows.valid() & result.observed
        empty = ~valid.any(axis=1)
        if empty.any():
            windows.notes.append(
                f"dropped {int(empty.sum())} trials with no observed bins (outside obs_intervals/series)"
            )
        partial = ~empty & ~(valid | ~windows.valid()).all(axis=1)
        if self.rules.complete_trials_only and partial.any():
            windows.notes.append(f"dropped {int(partial.sum())} trials whose window is not wholly inside the units' "
                                 "obs_intervals (bins with no observations)")
            empty = empty | partial
        if empty.any():
            keep = ~empty
            if not keep.any():
                raise SessionContentError(
                    "every trial lies outside the observed data (obs_intervals or the counts series' samples); "
                    "check --trials-table/--window"
                )
            windows, kept = windows.subset(keep), keep
            valid = valid[keep]
            if result.counts is not None:
                result.counts = result.counts[keep]
        if result.counts is None:  # spike times: binned now, for the kept trials only
            result.counts = source.bin(all_windows, kept, valid)
        else:
            result.counts[~valid] = 0
        for note in windows.notes:
            warnings.warn(note, stacklevel=3)

        trial_vars = self.trial_variables(table, windows) if table is not None else {}
        attrs = self.attrs(windows, result, trials_table, unit_filter, counts_series, behavior, window_length)
        attrs["channel_filter"] = channel_filter or ""
        attrs["reader_notes"] = json.dumps(windows.notes)
        ds = make_session_dataset(
            result.counts,
            width,
            mask=valid,
            split=windows.split,
            trial_ids=windows.trial_ids,
            unit_ids=result.unit_ids,
            align_time=windows.align_time,
            time_offset=windows.offset,
            extra_trial_vars=trial_vars,
            extra_unit_vars=result.unit_vars,
            attrs=attrs,
        )
        if behavior:
            from nwb_ldns.data.attributes import describe_variables

            ds = describe_variables(self.add_behavior(ds, behavior, windows, valid))
        return ds

    # -- extras ------------------------------------------------------------------------------------------------
    def trial_variables(self, table, windows: Windows) -> dict[str, np.ndarray]:
        out = {}
        for name in tables.scalar_columns(table, skip=SPLIT_COLUMNS):
            values = tables.scalar_values(tables.column(table, name))
            if len(values) == len(table):
                out[f"trial_{name}"] = values[windows.rows]
        return out

    def add_behavior(self, ds: xr.Dataset, name: str, windows: Windows, valid: np.ndarray) -> xr.Dataset:
        path, series = self.series(name, "--behavior")
        data = np.asarray(series.data[:])
        timestamps = None if series.timestamps is None else np.asarray(series.timestamps[:])
        times = binning.series_times(len(data), timestamps, series.starting_time, series.rate)
        starts, dest = windows.bin_grid()
        values, n_outside = binning.behaviour_on_bins(data, times, starts + self.rules.behavior_lag,
                                                      windows.bin_width)
        values *= self.rules.behavior_scale
        n_dims = values.shape[1]
        full = np.zeros((len(windows.trial_ids) * windows.n_max, n_dims), dtype=np.float32)
        full[dest] = values
        full = full.reshape(len(windows.trial_ids), windows.n_max, n_dims)
        full[~valid] = 0.0
        if n_outside:
            warnings.warn(f"{n_outside} bins lie outside the time span of {path}; their behaviour is NaN", stacklevel=4)
        ds = ds.assign(behavior=(("trial", "time", "behavior_dim"), full))
        ds = ds.assign_coords(behavior_dim=_behavior_dim_names(series, n_dims))
        ds.attrs["behavior_series"] = path
        ds.attrs["behavior_lag"] = float(self.rules.behavior_lag)
        ds.attrs["behavior_scale"] = float(self.rules.behavior_scale)
        return ds

    def attrs(self, windows, result, trials_table, unit_filter, counts_series, behavior, window_length) -> dict:
        nwbfile = self.nwbfile
        start = nwbfile.session_start_time
        return {
            "source_path": self.opened.source_path,
            "source_identifier": str(nwbfile.identifier),
            "source_sha256": self.sha256(),
            "source_units_object_id": result.units_object_id,
            "source_session_description": str(nwbfile.session_description or ""),
            "source_session_start_time": start.isoformat() if start is not None else "",
            "source_subject": subject_json(nwbfile.subject),
            "source_nwb_version": self.opened.nwb_version,
            "trials_table": windows.table_path,
            "align": windows.align,
            "window": json.dumps(list(windows.window) if windows.window is not None else None),
            "window_length": float(window_length) if window_length is not None else 0.0,
            "unit_filter": unit_filter or "",
            "counts_series": counts_series or "",
            "behavior_series": "",
        }


def _behavior_dim_names(series, n_dims: int) -> np.ndarray:
    comments = str(getattr(series, "comments", "") or "")
    if "columns=[" in comments:
        inner = comments.split("columns=[", 1)[1].split("]", 1)[0]
        names = [name.strip().strip("'\"") for name in inner.split(",")]
        if len(names) == n_dims and all(names):
            return np.array(names, dtype=str)
    return np.array([str(i) for i in range(n_dims)], dtype=str)


def subject_json(subject) -> str:
    """JSON text of the Subject's scalar fields ("" when the file has no Subject)."""
    if subject is None:
        return ""
    fields = {}
    for key, value in subject.fields.items():
        if hasattr(value, "isoformat"):
            fields[key] = value.isoformat()
        elif isinstance(value, (str, int, float, bool)):
            fields[key] = value
        elif isinstance(value, np.generic):
            fields[key] = value.item()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            fields[key] = list(value)
    return json.dumps(fields, sort_keys=True)


def _refuse_duplicate_ids(ids: np.ndarray, path: str) -> None:
    """Unit ids name units in every output (Units ids, source_unit_id, reports); two units under one id would be
    merged or mislabelled downstream, so they are refused at load rather than at export."""
    values, counts = np.unique(ids, return_counts=True)
    repeated = values[counts > 1]
    if len(repeated):
        shown = ", ".join(str(int(v)) for v in repeated[:5]) + (" ..." if len(repeated) > 5 else "")
        raise SessionContentError(
            f"{path}: {len(repeated)} unit id(s) appear more than once in the Units table ({shown}); every unit needs "
            "a unique id. Rewrite the table's id column in a copy of the file, or leave the repeated units out "
            "with --units-filter on another column")


class _UnitsSource:
    """Counts from spike times of a Units table, read, checked and binned unit chunk by unit chunk.

    Nothing holds every spike time at once (nwb_ldns.data.spike_stream); counts that do not fit the memory budget
    (nwb_ldns.data.counts_cache) are binned into the on-disk counts cache instead of an array.
    """

    def __init__(self, reader: _Reader, name: str, unit_filter: str | None) -> None:
        self.reader = reader
        self.path, self.table = reader.units(name)
        self.bin_width = None
        self.locations = electrode_locations(self.table)
        derived = {"location": self.locations} if self.locations is not None else None
        selected = unit_selection(self.table, unit_filter, self.path, derived)
        self.rows = np.flatnonzero(selected)
        ids = tables.flat_data(self.table.id).astype(np.int64)
        _refuse_duplicate_ids(ids[self.rows], self.path)
        self.all_ids = ids
        data, index = tables.ragged_lazy(self.table, "spike_times")
        check_numeric_dtype(data, f"{self.path}/spike_times", "spike times in seconds")
        self.spikes = SpikeTimes(data, index, self.rows, ids[self.rows], self.path)
        self.spikes.scan(counts_cache.chunk_bytes() // BYTES_PER_SPIKE)
        self.obs = None
        if tables.has_column(self.table, "obs_intervals"):
            obs, obs_index = tables.ragged(self.table, "obs_intervals")
            obs = _numeric(obs, f"{self.path}/obs_intervals", "[start, stop] times in seconds").reshape(-1, 2)
            self.obs = _select_ragged(obs, obs_index, self.rows)
        self.cache_options: dict[str, Any] = {}
        self.cached = False  # whether the last counts() went to the on-disk cache

    @property
    def n_units(self) -> int:
        return len(self.spikes)

    def check_bin_width(self, width: float) -> None:
        return None

    def span(self) -> tuple[float, float]:
        """Recording span for --window-length: the obs_intervals' extent, else first to last spike."""
        if self.obs is not None and len(self.obs[0]):
            return float(self.obs[0][:, 0].min()), float(self.obs[0][:, 1].max())
        if self.spikes.n_spikes == 0:
            raise SessionContentError(f"{self.path} holds no spikes in the selected units; check --units-filter")
        return float(np.floor(self.spikes.t_min * 1e6) / 1e6), float(self.spikes.t_max)

    def recording(self, table) -> tuple[float, float]:
        """Time range a trial window may cover: from 0 to the last spike, trial stop or observed interval."""
        has_spikes = self.spikes.n_spikes > 0
        ends = [float(self.spikes.t_max)] if has_spikes else []
        begin = min(0.0, float(self.spikes.t_min)) if has_spikes else 0.0
        if self.obs is not None and len(self.obs[0]):
            ends.append(float(self.obs[0][:, 1].max()))
        stop = tables.flat_data(tables.column(table, "stop_time")).astype(np.float64)
        if len(stop) and np.isfinite(stop).any():
            ends.append(float(np.nanmax(stop)))
        return begin, max(ends) if ends else 0.0

    # -- observation (obs_intervals) ---------------------------------------------------------------------------
    def _obs_chunk(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(intervals, end offsets, has-intervals) of selected units first..last."""
        obs_data, obs_index = self.obs
        begin = int(obs_index[first - 1]) if first else 0
        index = np.asarray(obs_index[first:last], dtype=np.int64) - begin
        data = obs_data[begin:int(obs_index[last - 1])] if last > first else obs_data[:0]
        return data, index, np.diff(np.concatenate([[0], index])) > 0

    def _seen(self, first: int, last: int, centers: np.ndarray) -> np.ndarray:
        """(units first..last, bins) bool: is each bin centre inside that unit's obs_intervals (units without
        intervals carry no information: always observed)."""
        data, index, has = self._obs_chunk(first, last)
        matrix = binning.observed_matrix(data, index, centers)
        matrix[~has] = True
        return matrix

    def _obs_chunks(self, n_bins: int) -> list[tuple[int, int]]:
        units = max(1, counts_cache.chunk_bytes() // max(n_bins, 1))
        return [(first, min(first + units, self.n_units)) for first in range(0, self.n_units, units)]

    def counts(self, windows: Windows) -> _Counts:
        """The observed bins now (counts=None): `bin` fills the counts once the reader knows the kept trials."""
        starts, dest = windows.bin_grid()
        n_trials, n_max = len(windows.trial_ids), windows.n_max
        observed = np.ones((n_trials, n_max), dtype=bool)
        self.partial = np.zeros(0, dtype=np.int64)  # bins some, not all, units observe
        if self.obs is not None and (np.diff(np.concatenate([[0], self.obs[1]])) > 0).any():
            centers = starts + windows.bin_width / 2
            seen_by_all = np.ones(len(starts), dtype=bool)
            seen_by_any = np.zeros(len(starts), dtype=bool)
            for first, last in self._obs_chunks(len(starts)):
                matrix = self._seen(first, last, centers)
                seen_by_all &= matrix.all(axis=0)
                seen_by_any |= matrix.any(axis=0)
            obs_flat = np.zeros(n_trials * n_max, dtype=bool)
            obs_flat[dest] = seen_by_any
            observed = obs_flat.reshape(n_trials, n_max)
            self.partial = np.flatnonzero(seen_by_any & ~seen_by_all)
            if len(self.partial):
                unseen = sum(int((~self._seen(first, last, centers[self.partial])).sum())
                             for first, last in self._obs_chunks(len(self.partial)))
                warnings.warn(
                    f"{unseen} (unit, bin) pairs lie outside that unit's obs_intervals while other units "
                    "are observed; their counts are set to 0",
                    stacklevel=4,
                )
        unit_vars = {}
        for name in tables.scalar_columns(self.table, skip=("spike_times",)):
            values = tables.scalar_values(tables.column(self.table, name))
            if len(values) == len(self.all_ids):
                unit_vars[f"unit_{name}"] = values[self.rows]
        if self.locations is not None and "unit_location" not in unit_vars:
            unit_vars["unit_location"] = self.locations[self.rows]
        return _Counts(None, observed, self.all_ids[self.rows], unit_vars, str(self.table.object_id or ""))

    # -- binning -----------------------------------------------------------------------------------------------
    def bin(self, windows: Windows, keep: np.ndarray | None, valid: np.ndarray) -> np.ndarray | LazyCounts:
        """Counts (kept trials, bins, units), 0 outside `valid`: float32 in memory, or the on-disk cache when they
        exceed the memory budget (local files only)."""
        n_kept, n_max = (int(keep.sum()) if keep is not None else len(windows.trial_ids)), windows.n_max
        plan = _BinPlan(windows, self.partial)
        self.cached = False
        if counts_cache.counts_in_memory(n_kept, n_max, self.n_units) or self.reader.opened.local_path is None:
            if self.reader.opened.local_path is None:  # a remote file is binned in memory: refuse what cannot fit
                check_session_size(n_kept, n_max, self.n_units, "read fewer trials or units, or download the "
                                   "file and read the local copy (big local sessions are binned to disk)")
            flat = np.zeros((plan.out_size, self.n_units), dtype=np.float32)
            for first, last, spikes, index in self.spikes.chunks(counts_cache.chunk_bytes() // BYTES_PER_SPIKE,
                                                                 plan.max_units()):
                flat[:, first:last] = self._bin_chunk(plan, first, last, spikes, index)
            counts = flat.reshape(len(windows.trial_ids), n_max, self.n_units)
            if keep is not None:
                counts = counts[keep]
            counts[~valid] = 0
            return counts
        self.cached = True
        return self._cached_counts(plan, keep, valid, (n_kept, n_max, self.n_units))

    def _bin_chunk(self, plan: "_BinPlan", first: int, last: int, spikes: np.ndarray, index: np.ndarray
                   ) -> np.ndarray:
        """(out_size, last - first) float32 counts of units first..last, 0 where only other units observe."""
        part = None
        for starts, dest in plan.layers:  # bins of mutually disjoint windows: the fast binning path applies
            counts = binning.bin_spike_times(spikes, index, starts, plan.width, dest, plan.out_size)
            part = counts if part is None else part + counts
        if part is None:
            part = np.zeros((plan.out_size, last - first), dtype=np.float32)
        if len(plan.partial):
            unseen = ~self._seen(first, last, plan.centers[plan.partial])  # (unit, bin)
            rows = np.broadcast_to(plan.dest[plan.partial], unseen.shape)[unseen]
            part[rows, np.nonzero(unseen)[0]] = 0
        return part

    def _cached_counts(self, plan: "_BinPlan", keep: np.ndarray | None, valid: np.ndarray,
                       shape: tuple[int, int, int]) -> LazyCounts:
        """The counts from the on-disk cache, binned into it first unless an intact one exists."""
        grid = hashlib.sha256()
        for array in (plan.starts, plan.dest, keep if keep is not None else np.zeros(0, bool), valid, self.rows):
            grid.update(np.ascontiguousarray(array).tobytes())
        options = {**self.cache_options, "units": self.path, "shape": list(shape),
                   "grid_sha256": grid.hexdigest(), "source_sha256": self.reader.sha256()}
        key = counts_cache.cache_key(options["source_sha256"], options)
        lazy = counts_cache.open_cache(key, shape)
        if lazy is not None:
            return lazy
        unit_block = plan.max_units()
        dtype = np.dtype(np.uint8)
        while True:  # the smallest dtype that holds the counts; a rare overflow restarts with a wider one
            top = 0.0
            try:
                with counts_cache.build_cache(key, shape, dtype, unit_block) as writer:
                    chunks = self.spikes.chunks(1 << 62, unit_block)
                    bar = _progress(len(self.spikes.unit_chunks(1 << 62, unit_block)), "binning to disk")
                    for first, last, spikes, index in chunks:
                        part = self._bin_chunk(plan, first, last, spikes, index)
                        block = part.reshape(len(keep) if keep is not None else shape[0], shape[1], last - first)
                        del part
                        if keep is not None:
                            block = block[keep]
                        block[~valid] = 0
                        top = max(top, float(block.max()) if block.size else 0.0)
                        if top > _dtype_max(dtype):
                            raise _Overflow(top)
                        writer.write_units(first, block)
                        bar.update(1)
                    bar.close()
                    writer.finish(key, options, top)
            except _Overflow as overflow:
                dtype = counts_cache.count_dtype(overflow.top)
                continue
            except OutputExistsError:
                pass  # another process finished the same cache meanwhile: use it
            except OutputWriteError as error:  # a full or read-only cache disk: say where else the cache can go
                raise OutputWriteError(f"{error} (the counts cache of a session beyond the memory budget; set "
                                       f"{counts_cache.CACHE_ENV} to a folder on another disk)") from error
            break
        lazy = counts_cache.open_cache(key, shape)
        if lazy is None:
            raise OutputWriteError(f"the counts cache {counts_cache.cache_root() / key} could not be read back "
                                   f"after writing it; check the disk, or set {counts_cache.CACHE_ENV} to another "
                                   "folder")
        return lazy


class _Overflow(Exception):
    """A count above what the cache's dtype holds (the build restarts with a wider dtype)."""

    def __init__(self, top: float) -> None:
        super().__init__(top)
        self.top = top


def _dtype_max(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else float("inf")


def _progress(total: int, desc: str):
    from nwb_ldns.progress import bar

    return bar(total=total, desc=desc, unit="chunk", disable=total < 4 or None, leave=False)


class _BinPlan:
    """The bin grid of the windows, split into layers of mutually disjoint windows, for binning unit chunks."""

    def __init__(self, windows: Windows, partial: np.ndarray) -> None:
        self.starts, self.dest = windows.bin_grid()
        self.width = windows.bin_width
        self.out_size = len(windows.trial_ids) * windows.n_max
        self.centers = self.starts + windows.bin_width / 2
        self.partial = partial
        layer = window_layers(windows)[self.dest // max(windows.n_max, 1)]
        self.layers = [(self.starts[layer == number], self.dest[layer == number])
                       for number in range(int(layer.max()) + 1 if len(layer) else 0)]

    def max_units(self) -> int:
        """Units per chunk so that one chunk's float32 counts stay within the binning chunk budget."""
        return max(1, counts_cache.chunk_bytes() // (4 * max(self.out_size, 1)))


def electrode_locations(units) -> np.ndarray | None:
    """Brain location of each unit's electrode (via the `electrodes` region), when each unit has exactly one."""
    from hdmf.common import DynamicTableRegion, VectorIndex

    if not tables.has_column(units, "electrodes"):
        return None
    try:
        col = tables.column(units, "electrodes")
        if isinstance(col, VectorIndex):
            ends = tables.flat_data(col).astype(np.int64)
            if not np.array_equal(ends, np.arange(1, len(ends) + 1)):
                return None  # several electrodes per unit: no single location
            col = col.target
        if not isinstance(col, DynamicTableRegion) or not tables.has_column(col.table, "location"):
            return None
        rows = tables.flat_data(col).astype(np.int64)
        locations = tables.scalar_values(tables.column(col.table, "location"))
        return locations[rows] if len(rows) == len(units) else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a malformed region only costs the optional location variable


def window_layers(windows: Windows) -> np.ndarray:
    """Layer number per window such that the windows of one layer do not overlap (greedy interval partitioning).

    Non-overlapping trials all land in layer 0; a few overlapping trials (real tables have some) add a layer,
    so binning stays one vectorised pass per layer instead of a per-unit fallback.
    """
    begins = windows.align_time + windows.offset
    ends = begins + windows.n_bins * windows.bin_width
    layer = np.zeros(len(begins), dtype=np.int64)
    layer_ends: list[float] = []
    for w in np.argsort(begins, kind="stable"):
        for number, end in enumerate(layer_ends):
            if begins[w] >= end - 1e-9 * windows.bin_width:
                layer[w] = number
                layer_ends[number] = ends[w]
                break
        else:
            layer[w] = len(layer_ends)
            layer_ends.append(ends[w])
    return layer


def _numeric(values: Any, where: str, expected: str) -> np.ndarray:
    """float64 values of a column that must hold numbers (text or objects there is a damaged or foreign file)."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise SessionContentError(f"{where} holds {values.dtype} values, not {expected}; the table is damaged or "
                                  "was written by a tool that stored them as text: rewrite the column as numbers")
    return values.astype(np.float64)


def _select_ragged(data: np.ndarray, index: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ragged rows `rows` of (data, end offsets), re-packed."""
    index = np.asarray(index, dtype=np.int64)
    if len(rows) == len(index):
        return data, index
    begins = np.concatenate([[0], index[:-1]])
    pieces = [data[begins[r] : index[r]] for r in rows]
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    packed = np.concatenate(pieces) if pieces else data[:0]
    return packed, np.cumsum(lengths)


class _SeriesSource:
    """Counts from a binned-count TimeSeries (e.g. threshold crossings), one channel per unit."""

    def __init__(self, reader: _Reader, name: str, bin_width: float | None, channel_filter: str | None = None
                 ) -> None:
        self.path, self.series = reader.series(name, "--counts-series", tables.is_count_series)
        data = np.asarray(self.series.data[:])
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2:
            raise SessionContentError(
                f"{self.path} has data of shape {data.shape}; a counts series must be (time, channel)"
            )
        self.channels = np.arange(data.shape[1], dtype=np.int64)
        self.unit_vars: dict[str, np.ndarray] = {}
        if channel_filter:
            electrodes, rows, _ = channel_electrodes(self.series, data.shape[1], reader.nwbfile, self.path)
            usable = tables.scalar_columns(electrodes)
            keep = select_rows(channel_filter, data.shape[1], usable,
                               lambda column: tables.scalar_values(tables.column(electrodes, column))[rows],
                               where=f"{self.path}'s electrodes", option="--channels", what="channels")
            self.channels = np.flatnonzero(keep)
            data = data[:, self.channels]
            ids = tables.flat_data(electrodes.id).astype(np.int64)[rows]
            self.unit_vars["unit_electrode_id"] = ids[self.channels]
            if "location" in usable:
                self.unit_vars["unit_location"] = tables.scalar_values(
                    tables.column(electrodes, "location"))[rows][self.channels]
        self.data = data
        timestamps = None if self.series.timestamps is None else np.asarray(self.series.timestamps[:])
        if timestamps is None and not self.series.rate:
            raise SessionContentError(f"{self.path} has neither timestamps nor rate; it cannot be placed in time")
        self.times = binning.series_times(len(data), timestamps, self.series.starting_time, self.series.rate)
        if self.series.rate:
            self.sample_width = 1.0 / float(self.series.rate)
        elif len(self.times) > 1:
            self.sample_width = float(np.median(np.diff(self.times)))
        else:
            raise SessionContentError(f"{self.path} has a single sample; its bin width cannot be known")
        self.bin_width = self.sample_width
        finite = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
        if (np.where(finite, data, 0) < 0).any():
            raise SessionContentError(
                f"{self.path} holds negative values; --counts-series must name a series of counts"
            )

    @property
    def n_units(self) -> int:
        return int(self.data.shape[1])

    def check_bin_width(self, width: float) -> None:
        ratio = width / self.sample_width
        if ratio < 1 - 1e-6 or abs(ratio - round(ratio)) > 1e-6:
            raise OptionError(
                f"--bin-width {width} is not a whole multiple of {self.path}'s sample spacing {self.sample_width:g} s; "
                f"use {self.sample_width:g} or a multiple of it"
            )

    def span(self) -> tuple[float, float]:
        return float(self.times.min()), float(self.times.max() + self.sample_width)

    def recording(self, table) -> tuple[float, float]:
        return self.span()

    def counts(self, windows: Windows) -> _Counts:
        n_trials, n_max = len(windows.trial_ids), windows.n_max
        if not counts_cache.counts_in_memory(n_trials, n_max, self.n_units):  # the windows' check left it to us
            check_session_size(n_trials, n_max, self.n_units, "read fewer trials or channels (--window, --channels)")
        starts, dest = windows.bin_grid()
        data = self.data
        nan = np.isnan(data).any(axis=1) if data.dtype.kind == "f" else None
        if nan is not None:
            data = np.where(np.isnan(data), 0, data)
        sums, n_samples = binning.rebin_series_sum(data, self.times, self.sample_width, starts, windows.bin_width)
        expected = int(round(windows.bin_width / self.sample_width))
        observed_bins = n_samples > 0
        if nan is not None and nan.any():
            bad, _ = binning.rebin_series_sum(
                nan.astype(np.int64), self.times, self.sample_width, starts, windows.bin_width
            )
            observed_bins &= bad[:, 0] == 0
        partial = observed_bins & (n_samples < expected)
        if partial.any():
            warnings.warn(f"{int(partial.sum())} bins are only partly covered by samples of {self.path}", stacklevel=4)
        counts = np.zeros((n_trials * n_max, data.shape[1]), dtype=np.float32)
        counts[dest] = sums
        observed = np.zeros(n_trials * n_max, dtype=bool)
        observed[dest] = observed_bins
        return _Counts(
            counts.reshape(n_trials, n_max, -1),
            observed.reshape(n_trials, n_max),
            self.channels,
            dict(self.unit_vars),
            "",
        )


def channel_electrodes(series, n_channels: int, nwbfile, path: str) -> tuple[Any, np.ndarray, str]:
    """(electrodes table, its row of each channel, how they were matched) for the columns of a counts series.

    An ElectricalSeries-like series names its rows with an `electrodes` region; a plain TimeSeries (e.g. the tx1
    counts `convert willett` writes, column j = electrode j) maps column j to row j of the file's electrodes
    table, which therefore needs exactly one row per channel.
    """
    region = getattr(series, "electrodes", None)
    if region is not None and getattr(region, "table", None) is not None:
        rows = tables.flat_data(region).astype(np.int64)
        if len(rows) and not 0 <= rows.min() <= rows.max() < len(region.table):
            raise SessionContentError(f"{path}'s electrodes region points outside its electrodes table (rows "
                                      f"{rows.min()}..{rows.max()} of {len(region.table)}); the file is damaged, "
                                      "drop --channels to use every channel")
        if len(rows) != n_channels:
            raise SessionContentError(
                f"{path} has {n_channels} channels but its electrodes region lists {len(rows)} electrodes, so "
                "--channels cannot tell which electrode each channel is; drop --channels (all channels are used)"
            )
        return region.table, rows, "its electrodes region"
    electrodes = getattr(nwbfile, "electrodes", None)
    n_rows = 0 if electrodes is None else len(electrodes)
    if n_rows == 0:
        raise SessionContentError(
            f"{path} has no electrodes region and the file has no electrodes table, so --channels has nothing to "
            f"select on; drop --channels (all {n_channels} channels are used)"
        )
    if n_rows != n_channels:
        raise SessionContentError(
            f"{path} has {n_channels} channels and no electrodes region, and the file's electrodes table has "
            f"{n_rows} rows, so channels cannot be matched to electrodes by position; drop --channels (all "
            "channels are used)"
        )
    return electrodes, np.arange(n_channels, dtype=np.int64), "column j = electrodes row j"
