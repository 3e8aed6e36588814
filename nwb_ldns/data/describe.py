"""`describe_session`: what the reader finds in a file, and the load options that fit it (`nwb-ldns inspect`).

A user with a file nobody here wrote should not need h5py to find out that its trials live in
`intervals/recognition_table` or that its counts are in `processing/ecephys/tx1`; this lists them and proposes
options that `load_session` accepts for this file.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from nwb_ldns.data import nlb, tables
from nwb_ldns.data.opening import open_nwb
from nwb_ldns.data.session import (DEFAULT_BIN_WIDTH, channel_electrodes, electrode_locations, provenance_bin_width,
                                   subject_json)
from nwb_ldns.errors import SessionContentError
from nwb_ldns.data.windows import SPLIT_COLUMNS, n_bins_in

_MAX_CATEGORIES = 8  # a column with at most this many distinct values is listed as categorical


def _column_summary(table, name: str) -> dict[str, Any]:
    col = tables.column(table, name)
    if not tables.is_scalar_column(col):
        return {"name": name, "kind": "ragged or table region"}
    values = tables.scalar_values(col)
    summary: dict[str, Any] = {"name": name, "dtype": str(values.dtype)}
    if values.dtype.kind in "biu" or values.dtype.kind in "US":
        unique, counts = np.unique(values, return_counts=True)
        if len(unique) <= _MAX_CATEGORIES:
            summary["values"] = {str(u): int(c) for u, c in zip(unique.tolist(), counts.tolist())}
    if values.dtype.kind in "iuf" and len(values):
        finite = values[np.isfinite(values.astype(np.float64))]
        if len(finite):
            summary["range"] = [float(finite.min()), float(finite.max())]
    return summary


def _units_summary(path: str, table) -> dict[str, Any]:
    spike_times, index = tables.ragged(table, "spike_times")
    spike_times = np.asarray(spike_times, dtype=np.float64)
    info: dict[str, Any] = {
        "path": path,
        "n_units": int(len(table)),
        "n_spikes": int(len(spike_times)),
        "time_range": [float(np.nanmin(spike_times)), float(np.nanmax(spike_times))] if len(spike_times) else None,
        "has_obs_intervals": tables.has_column(table, "obs_intervals"),
        "columns": [_column_summary(table, name) for name in tables.colnames(table) if name != "spike_times"],
    }
    locations = electrode_locations(table)
    if locations is not None and not tables.has_column(table, "location"):
        unique, counts = np.unique(locations, return_counts=True)
        info["columns"].append(
            {"name": "location", "dtype": "str", "via": "electrodes",
             "values": {str(u): int(c) for u, c in zip(unique.tolist(), counts.tolist())}}
        )
    return info


def _trials_summary(path: str, table) -> dict[str, Any]:
    start = tables.flat_data(tables.column(table, "start_time")).astype(np.float64)
    stop = tables.flat_data(tables.column(table, "stop_time")).astype(np.float64)
    duration = stop - start
    finite = duration[np.isfinite(duration)]
    time_columns = [
        name
        for name in tables.scalar_columns(table, skip=("start_time", "stop_time"))
        if name.endswith("_time") and tables.flat_data(tables.column(table, name)).dtype.kind == "f"
    ]
    return {
        "path": path,
        "n_rows": int(len(table)),
        "duration": (
            {"min": float(finite.min()), "median": float(np.median(finite)), "max": float(finite.max())}
            if len(finite)
            else None
        ),
        "time_range": [float(np.nanmin(start)), float(np.nanmax(stop))] if len(start) else None,
        "has_split": any(tables.has_column(table, name) for name in SPLIT_COLUMNS),
        "align_columns": time_columns,
        "columns": [_column_summary(table, name) for name in tables.colnames(table)],
    }


CONDITION_MAX_CLASSES = 20
CONDITION_MIN_TRIALS = 5


def condition_columns(trials: dict[str, Any]) -> list[str]:
    """Categorical columns worth conditioning on (`fit --condition`): 2-20 classes, each with >= 5 trials."""
    out = []
    for column in trials["columns"]:
        values = column.get("values")
        if column["name"] in (*SPLIT_COLUMNS, "trial_type_name") or not values:
            continue
        counts = list(values.values())
        if 2 <= len(counts) <= CONDITION_MAX_CLASSES and min(counts) >= CONDITION_MIN_TRIALS:
            out.append(column["name"])
    return out


def _channel_summary(path: str, series, nwbfile) -> dict[str, Any] | None:
    """How a counts series' channels map to electrodes, and the electrodes columns `--channels` can filter on."""
    shape = getattr(series.data, "shape", ())
    n_channels = int(shape[1]) if len(shape) == 2 else 1
    try:
        electrodes, rows, via = channel_electrodes(series, n_channels, nwbfile, path)
    except SessionContentError:
        return None  # no electrodes to map to: --channels does not apply
    columns = []
    for name in tables.scalar_columns(electrodes):
        values = tables.scalar_values(tables.column(electrodes, name))[rows]
        unique, counts = np.unique(values, return_counts=True)
        if len(unique) <= _MAX_CATEGORIES:
            columns.append({"name": name, "values": {str(u): int(c) for u, c in zip(unique.tolist(), counts.tolist())}})
        else:
            columns.append({"name": name, "dtype": str(values.dtype)})
    return {"via": via, "columns": columns}


def _series_summary(path: str, series) -> dict[str, Any]:
    data = series.data
    rate = float(series.rate) if series.rate else None
    info = {
        "path": path,
        "shape": [int(s) for s in data.shape],
        "dtype": str(data.dtype),
        "unit": str(getattr(series, "unit", "") or ""),
        "rate": rate,
        "timestamps": series.timestamps is not None,
    }
    if rate is None and series.timestamps is not None and len(series.timestamps) > 1:
        head = np.asarray(series.timestamps[: min(len(series.timestamps), 10000)])
        info["sample_width"] = float(np.median(np.diff(head)))
    return info


def _fitting_window(table, column: str, bin_width: float) -> tuple[float, float] | None:
    """The widest window around `column` that lies inside every trial (rounded inward to whole bins)."""
    start = tables.flat_data(tables.column(table, "start_time")).astype(np.float64)
    stop = tables.flat_data(tables.column(table, "stop_time")).astype(np.float64)
    align = tables.flat_data(tables.column(table, column)).astype(np.float64)
    ok = np.isfinite(start) & np.isfinite(stop) & np.isfinite(align)
    if not ok.any():
        return None
    before = float(np.min(align[ok] - start[ok]))
    after = float(np.min(stop[ok] - align[ok]))
    if before < 0 or after <= 0:
        return None
    w0 = -float(n_bins_in(before, bin_width)) * bin_width
    w1 = float(n_bins_in(after, bin_width)) * bin_width
    if w1 - w0 < bin_width:
        return None
    return round(w0, 9), round(w1, 9)


def _suggestions(info: dict[str, Any], table_objs: dict[str, Any], bin_width: float) -> list[dict[str, Any]]:
    suggestions: list[dict[str, Any]] = []
    base: dict[str, Any] = {}
    if info["units_tables"]:
        units = info["units_tables"][0]
        if units["path"] != "units":
            base["units_table"] = units["path"]
        heldout = next((c for c in units["columns"] if c["name"] == "heldout" and c.get("dtype") == "bool"), None)
        if heldout is not None:
            base["unit_filter"] = "heldout==False"
    elif info["count_series"]:
        base["counts_series"] = info["count_series"][0]["path"]
    else:
        return suggestions
    for trials in info["trial_tables"]:
        path = trials["path"]
        name = "trials" if path == "intervals/trials" else path
        options = dict(base, trials_table=name)
        duration = trials["duration"]
        if duration is None:
            continue
        fixed = n_bins_in(duration["min"], bin_width) == n_bins_in(duration["max"], bin_width)
        what = "fixed-length" if fixed else "variable-length (padded, masked)"
        suggestions.append({"description": f"{trials['n_rows']} {what} trials from {path}", "options": options})
        for column in trials["align_columns"]:
            window = _fitting_window(table_objs[path], column, bin_width)
            if window is not None:
                suggestions.append(
                    {
                        "description": f"trials of {path} aligned on {column} (widest window inside every trial)",
                        "options": dict(options, align=column, window=window),
                    }
                )
                break
    span = None
    if info["units_tables"] and info["units_tables"][0]["time_range"]:
        span = info["units_tables"][0]["time_range"]
    # the longest of 1, 0.5, 0.25, 0.1 s that still cuts the recording into at least 20 windows
    length = 1.0
    if span is not None:
        fitting = [v for v in (1.0, 0.5, 0.25, 0.1) if v <= (span[1] - span[0]) / 20 and v >= bin_width]
        length = fitting[0] if fitting else max(bin_width, 0.1)
    suggestions.append(
        {
            "description": f"fixed {length:g} s windows over the whole recording",
            "options": dict(base, window_length=length),
        }
    )
    if info["behavior_series"]:
        first = suggestions[0]
        first_behaviour = dict(first["options"], behavior=info["behavior_series"][0]["path"])
        suggestions.insert(1, {"description": first["description"] + " with behaviour", "options": first_behaviour})
    return suggestions


def describe_session(path: str | os.PathLike) -> dict[str, Any]:
    """Units tables, trial tables, count and behaviour series of a file, plus suggested load options (JSON-able)."""
    with open_nwb(path) as opened:
        nwbfile = opened.nwbfile
        objects = tables.catalog(nwbfile)
        units = [(p, o) for p, o in objects.items() if tables.is_units_table(o)]
        trials = [(p, o) for p, o in objects.items() if tables.is_trial_table(o) and not tables.is_units_table(o)]
        counts = [(p, o) for p, o in objects.items() if tables.is_count_series(o)]
        behaviour = [
            (p, o)
            for p, o in objects.items()
            if tables.is_time_series(o) and not tables.is_count_series(o) and _is_behaviour(p, o)
        ]
        bin_width = provenance_bin_width(nwbfile)
        start = nwbfile.session_start_time
        info: dict[str, Any] = {
            "source": opened.source_path,
            "backend": opened.backend,
            "nwb_version": opened.nwb_version,
            "identifier": str(nwbfile.identifier),
            "session_description": str(nwbfile.session_description or ""),
            "session_start_time": start.isoformat() if start is not None else "",
            "subject": json.loads(subject_json(nwbfile.subject) or "{}"),
            "provenance_bin_width": bin_width,
            "units_tables": [_units_summary(p, o) for p, o in units],
            "trial_tables": [_trials_summary(p, o) for p, o in trials],
            "count_series": [dict(_series_summary(p, o), channels=_channel_summary(p, o, nwbfile)) for p, o in counts],
            "behavior_series": [_series_summary(p, o) for p, o in behaviour],
        }
        default_width = bin_width or DEFAULT_BIN_WIDTH
        if not units and counts:
            default_width = info["count_series"][0].get("sample_width") or (
                1.0 / info["count_series"][0]["rate"] if info["count_series"][0]["rate"] else DEFAULT_BIN_WIDTH
            )
        info["default_bin_width"] = default_width
        info["suggestions"] = _suggestions(info, dict(trials), default_width)
        if nlb.looks_like_mc_maze(nwbfile):
            info["recipe"] = "mc_maze"
            info["suggestions"].insert(0, _mc_maze_suggestion())
        human = _human_suggestion(info, dict(trials))
        if human is not None:
            info["suggestions"].insert(0, human)
        for suggestion in info["suggestions"]:
            if "preset" not in suggestion:  # the estimate is of the auto preset
                suggestion.update(_fit_estimate(info, suggestion["options"], default_width))
    return info


def _mc_maze_suggestion() -> dict[str, Any]:
    """The paper's reading and preset: what `fit FILE --preset monkey` does on this layout (recipe auto)."""
    recipe = nlb.MC_MAZE
    return {"description": f"the LDNS paper's reading of MC_Maze (recipe mc_maze, chosen automatically): "
                           f"{recipe.bin_width * 1e3:g} ms bins, {recipe.window[0] * 1e3:g}..+{recipe.window[1] * 1e3:g} "
                           f"ms around {recipe.align}, held-in + held-out units, hand velocity lagged "
                           f"{recipe.behavior_lag * 1e3:g} ms, the LDNS split; the monkey preset of the paper",
            "options": {}, "preset": "monkey", "bin_width": recipe.bin_width, "window": recipe.window}


HUMAN_AREA = "area 6v"  # the channels the LDNS reference models (the first 128 of the Willett release)


def _human_suggestion(info: dict[str, Any], table_objs: dict[str, Any]) -> dict[str, Any] | None:
    """The paper's human reading for a counts series with area-6v electrodes (a `convert willett` file): those
    channels, the file's train/test split, the human preset (which drops trials over 512 bins)."""
    from nwb_ldns.config import PRESETS

    series = next((s for s in info["count_series"] if s.get("channels") and any(
        HUMAN_AREA in c.get("values", {}) for c in s["channels"]["columns"] if c["name"] == "location")), None)
    if series is None:
        return None
    n_area = next(c["values"][HUMAN_AREA] for c in series["channels"]["columns"] if c["name"] == "location")
    max_bins = PRESETS["human"]["training"]["max_bins"]
    width = series.get("sample_width") or (1.0 / series["rate"] if series["rate"] else DEFAULT_BIN_WIDTH)
    dropped = ""
    if "intervals/trials" in table_objs:
        table = table_objs["intervals/trials"]
        start = tables.flat_data(tables.column(table, "start_time")).astype(np.float64)
        stop = tables.flat_data(tables.column(table, "stop_time")).astype(np.float64)
        n_long = int((np.round((stop - start) / width) > max_bins).sum())
        dropped = f" ({n_long} of {len(start)} here)"
    return {"description": f"the LDNS paper's reading of the Willett et al. 2023 speech data: the {n_area} "
                           f"{HUMAN_AREA} channels of {series['path']} ({width * 1e3:g} ms bins), the file's "
                           f"train/test split, trials over {max_bins} bins dropped{dropped}; the human preset of "
                           "the paper. List every session's file to train one model on all of them, as the paper "
                           "does (then --out is required)",
            "options": {"counts_series": series["path"], "channel_filter": f"location=={HUMAN_AREA}"},
            "preset": "human"}


def _fit_estimate(info: dict[str, Any], options: dict[str, Any], bin_width: float) -> dict[str, Any]:
    """Approximate session shape of a suggestion and the default (`auto`) fit's estimated time on 2 CPU cores."""
    from nwb_ldns.config import resolve_config
    from nwb_ldns.training.timing import estimate_fit_seconds

    if info["units_tables"]:
        n_units = int(info["units_tables"][0]["n_units"])
    elif info["count_series"] and len(info["count_series"][0]["shape"]) > 1:
        n_units = int(info["count_series"][0]["shape"][1])
    else:
        return {}
    if "window_length" in options:
        span = info["units_tables"][0]["time_range"] if info["units_tables"] else None
        if not span:
            return {}
        n_trials = int((span[1] - span[0]) // options["window_length"])
        n_bins = n_bins_in(options["window_length"], bin_width)
    else:
        table = next((t for t in info["trial_tables"]
                      if t["path"] == options.get("trials_table") or t["path"] == f"intervals/{options.get('trials_table')}"),
                     None)
        if table is None or table["duration"] is None:
            return {}
        n_trials = int(table["n_rows"])
        window = options.get("window")
        n_bins = n_bins_in(window[1] - window[0], bin_width) if window else n_bins_in(table["duration"]["max"], bin_width)
    n_train = max(2, int(round(0.7 * n_trials * 0.9)))  # the seeded 70% train split, less the held-out val part
    shape = {"n_train": n_train, "n_bins": max(1, n_bins), "n_units": n_units}
    seconds = estimate_fit_seconds(resolve_config("auto", shape=shape), n_train, shape["n_bins"])["total"]
    return {"shape": {"trials": n_trials, "bins": shape["n_bins"], "units": n_units}, "estimated_fit_s": seconds}


def _is_behaviour(path: str, series) -> bool:
    """Continuous series worth offering as --behavior: in a behavior module, or float data with 1-3 columns."""
    shape = getattr(series.data, "shape", ())
    dtype = getattr(series.data, "dtype", None)
    if path.startswith("processing/behavior/"):
        return True
    return (
        path.startswith(("processing/", "acquisition/"))
        and dtype is not None
        and np.dtype(dtype).kind == "f"
        and len(shape) in (1, 2)
        and (len(shape) == 1 or shape[1] <= 3)
        and len(shape) > 0
        and shape[0] > 1
    )
