"""`to_spikeinterface`: a session's units as a spikeinterface sorting (spike frames at a sampling frequency)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nwb_ldns.errors import OptionError
from nwb_ldns.interop.spike_trains import Source, spike_trains
from nwb_ldns.optional import require

DEFAULT_SAMPLING_FREQUENCY = 30_000.0  # a common acquisition rate, for files that do not state their resolution


def to_spikeinterface(source: Source, *, sampling_frequency: float | None = None, units_table: str = "units") -> Any:
    """A spikeinterface `NumpySorting` (one segment) of an NWB file (.nwb, .nwb.zarr, URL) or a session Dataset.

    Unit ids are the Units table ids (a Dataset's unit coordinate); the Units table's scalar columns become unit
    properties. Spike times become frames at `sampling_frequency` (Hz); by default 1 / the Units table's
    `resolution` when the file states one (1 MHz for the files nwb-ldns writes and for a Dataset, whose spike
    times are placed at 1 us precision, so no time moves), else 30 kHz.
    """
    si = require("spikeinterface.core", "to_spikeinterface")
    trains = spike_trains(source, units_table=units_table)
    if sampling_frequency is None:
        sampling_frequency = 1.0 / trains.resolution if trains.resolution else DEFAULT_SAMPLING_FREQUENCY
    sampling_frequency = float(sampling_frequency)
    if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
        raise OptionError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}; "
                          "pass e.g. 30000.0")
    frames = {int(uid): np.round(times * sampling_frequency).astype(np.int64)
              for uid, times in zip(trains.unit_ids, trains.times)}
    sorting = si.NumpySorting.from_unit_dict([frames], sampling_frequency=sampling_frequency)
    for name, values in trains.unit_columns.items():
        values = np.asarray(values)
        sorting.set_property(name, values.astype(str) if values.dtype.kind in "OSU" else values)
    return sorting
