"""`to_pynapple`: a session as pynapple objects (TsGroup of units, IntervalSet of trials with their columns)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nwb_ldns.interop.spike_trains import Source, as_metadata, sorted_trials, spike_trains
from nwb_ldns.optional import require


def _attributes(obj: Any) -> set[str]:
    """Names a metadata column may not take: the object's attributes and methods (pynapple refuses or hides them)."""
    return {name for name in dir(obj) if not name.startswith("_")} | {"rate"}


def to_pynapple(source: Source, *, units_table: str = "units", trials_table: str = "trials") -> tuple[Any, Any]:
    """(TsGroup, IntervalSet) of an NWB file (.nwb, .nwb.zarr, URL) or a session Dataset.

    TsGroup: one Ts per unit, keyed by the unit id, with the Units table's scalar columns as metadata.
    IntervalSet: one interval per trial (start_time..stop_time; for a Dataset the valid bins of each trial) in
    start order, with `trial_id`, `data_split` (train/val/test/generated; files with the older `split` column get
    it renamed, since `split` is an IntervalSet method) and the other trial columns as metadata, so
    `trials[trials.data_split == "train"]` selects the training trials. A column whose name is an attribute of
    the pynapple object is prefixed (`trial_`, `unit_`). Works on .nwb.zarr stores, which
    `pynapple.load_file` cannot open.
    """
    nap = require("pynapple", "to_pynapple")
    trains = spike_trains(source, units_table=units_table, trials_table=trials_table)
    start, stop, columns = sorted_trials(trains)
    low, high = trains.span()
    support = nap.IntervalSet(start=low, end=max(high, low) + 1e-6)
    probe_group = nap.TsGroup({0: nap.Ts(t=np.array([low]), time_support=support)}, time_support=support)
    units = {int(uid): nap.Ts(t=times, time_support=support) for uid, times in zip(trains.unit_ids, trains.times)}
    group = nap.TsGroup(units,
                        time_support=support,
                        metadata=as_metadata(trains.unit_columns, _attributes(probe_group), "unit_") or None)
    probe_set = nap.IntervalSet(start=0.0, end=1.0)
    intervals = nap.IntervalSet(start=start, end=stop,
                                metadata=as_metadata(columns, _attributes(probe_set), "trial_") or None)
    return group, intervals
