"""Crafted NWB sessions for the input-check tests (issue 14, item 4 and the size limits of item 2).

Each writer copies a small session written by `nwb_ldns.testing.write_mock_session` and edits the copy with h5py,
the way a broken or hostile file would look on disk; the base session is never changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

Edit = Callable[[h5py.File], None]


def edited_copy(source: Path, target: Path, edit: Edit) -> Path:
    """Copy `source` to `target` and apply `edit(h5py.File)` to the copy (opened r+)."""
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        edit(f)
    return target


def _replace(f: h5py.File, name: str, values: np.ndarray) -> None:
    """Replace dataset `name` by `values`, keeping its attributes (neurodata_type, namespace, object_id...)."""
    attrs = dict(f[name].attrs)
    del f[name]
    f.create_dataset(name, data=values)
    for key, value in attrs.items():
        f[name].attrs[key] = value


def shift_first_unit(seconds: float) -> Edit:
    """Shift the spike times of the first unit by `seconds` (negative: some spike times become negative)."""
    def edit(f: h5py.File) -> None:
        times = f["units/spike_times"][:]
        first_end = int(f["units/spike_times_index"][0])
        times[:first_end] += seconds
        _replace(f, "units/spike_times", times)
    return edit


def one_spike_at(time: float) -> Edit:
    """Add one spike at `time` seconds to the end of the last unit (e.g. 1e12 s: a session of 30000 years)."""
    def edit(f: h5py.File) -> None:
        times = np.append(f["units/spike_times"][:], time)
        index = f["units/spike_times_index"][:]
        index[-1] += 1
        _replace(f, "units/spike_times", times)
        _replace(f, "units/spike_times_index", index)
    return edit


def set_trial_times(starts: dict[int, float] | None = None, stops: dict[int, float] | None = None) -> Edit:
    """Set start_time/stop_time of the given trial rows."""
    def edit(f: h5py.File) -> None:
        for column, changes in (("start_time", starts or {}), ("stop_time", stops or {})):
            values = f[f"intervals/trials/{column}"][:]
            for row, value in changes.items():
                values[row] = value
            f[f"intervals/trials/{column}"][...] = values
    return edit


def overlap_every_trial(f: h5py.File) -> None:
    """Every trial stops half-way into the next one (a table built with the wrong stop times)."""
    start = f["intervals/trials/start_time"][:]
    stop = f["intervals/trials/stop_time"][:]
    stop[:-1] = start[1:] + 0.5 * (stop[1:] - start[1:])
    f["intervals/trials/stop_time"][...] = stop


def nwb_version(version: str) -> Edit:
    """Claim another NWB schema version in the root attribute."""
    def edit(f: h5py.File) -> None:
        f.attrs["nwb_version"] = version
    return edit


def as_recording(f: h5py.File) -> None:
    """Make the file look like a lab's recording rather than our output (no nwb-ldns source_script)."""
    general = f["general"]
    for name in ("source_script", "source_script_file_name"):
        if name in general:
            del general[name]


def zero_length_trials(rows: list[int] | None = None) -> Edit:
    """Set stop_time = start_time in the given trial rows (every row when None)."""
    def edit(f: h5py.File) -> None:
        start = f["intervals/trials/start_time"][:]
        stop = f["intervals/trials/stop_time"][:]
        chosen = np.arange(len(start)) if rows is None else np.asarray(rows)
        stop[chosen] = start[chosen]
        f["intervals/trials/stop_time"][...] = stop
    return edit


def stretch_stops(seconds: float) -> Edit:
    """Lengthen every trial by `seconds` (beyond the gap to the next trial: many short overlaps)."""
    def edit(f: h5py.File) -> None:
        f["intervals/trials/stop_time"][...] = f["intervals/trials/stop_time"][:] + seconds
    return edit


def duplicate_trial(row: int) -> Edit:
    """Make trial `row + 1` a copy of trial `row` (a table with a duplicated row)."""
    def edit(f: h5py.File) -> None:
        for column in ("start_time", "stop_time"):
            values = f[f"intervals/trials/{column}"][:]
            values[row + 1] = values[row]
            f[f"intervals/trials/{column}"][...] = values
    return edit


def zarr_nwb_version(store: Path, version: str) -> None:
    """Claim another NWB schema version in a Zarr store's root attributes (and its consolidated metadata)."""
    import json

    attrs_path = store / ".zattrs"
    attrs = json.loads(attrs_path.read_text())
    attrs["nwb_version"] = version
    attrs_path.write_text(json.dumps(attrs))
    consolidated = store / ".zmetadata"
    if consolidated.exists():
        meta = json.loads(consolidated.read_text())
        if ".zattrs" in meta.get("metadata", {}):
            meta["metadata"][".zattrs"]["nwb_version"] = version
            consolidated.write_text(json.dumps(meta))
