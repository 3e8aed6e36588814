"""The in-memory interchange type: one `xarray.Dataset` layout that every stage reads and writes.

A session read from NWB, a training set, and a set of generated trials all use the same names, so a user can
stop at any step in a notebook, look at the data with xarray, and go on. See docs/data-model.md.

Dimensions
    trial   one row per trial (coordinate: integer trial id from the source table, or window index)
    time    bins; coordinate = start of each bin in seconds relative to the alignment point
    unit    one per neuron/channel; coordinate = integer unit id of the source Units table (or channel index)
    behavior_dim, latent   optional

Variables
    counts   (trial, time, unit) float32   spike counts per bin, 0 outside the mask
    mask     (trial, time) bool            True for bins inside the trial (variable-length trials)
    split    (trial) str                   "train" | "val" | "test" | "generated"
    align_time (trial) float64             absolute session time (s) of time == 0 for that trial
    behavior (trial, time, behavior_dim) float32   optional
    rates    (trial, time, unit) float32   optional (ground truth or generated Poisson rates)
    latents  (trial, time, latent) float32 optional
    trial_<column> (trial)                 other trial-table columns, e.g. trial_condition
    unit_<column>  (unit)                  other Units columns, e.g. unit_location

Attributes (all JSON-serialisable scalars or strings)
    bin_width                 seconds per bin
    source_path               local path or URL the session was read from
    source_identifier         NWBFile.identifier
    source_sha256             sha256 of the local file ("" for remote sources)
    source_units_object_id    object_id of the source Units table ("" when counts came from a TimeSeries)
    source_session_description, source_session_start_time (ISO 8601)
    source_subject            JSON text of the Subject fields (subject_id, species, sex, age, description, ...)
    trials_table, align, window   how trials were cut (strings / JSON)
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import xarray as xr

from nwb_ldns.errors import SessionContentError

REQUIRED_VARIABLES = ("counts", "mask", "split", "align_time")
SPLITS = ("train", "val", "test", "generated")


def make_session_dataset(
    counts: np.ndarray,
    bin_width: float,
    *,
    mask: np.ndarray | None = None,
    split: np.ndarray | list[str] | None = None,
    trial_ids: np.ndarray | None = None,
    unit_ids: np.ndarray | None = None,
    align_time: np.ndarray | None = None,
    time_offset: float = 0.0,
    extra_trial_vars: Mapping[str, np.ndarray] | None = None,
    extra_unit_vars: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a session Dataset with the documented names from plain arrays (counts is trial x time x unit, or
    the on-disk counts cache of a big session, nwb_ldns.data.counts_cache.LazyCounts, kept lazy)."""
    from nwb_ldns.data.counts_cache import LazyCounts, lazy_variable

    lazy = isinstance(counts, LazyCounts)
    counts = counts if lazy else np.asarray(counts, dtype=np.float32)
    if counts.ndim != 3:
        raise SessionContentError(f"counts must be (trial, time, unit), got shape {counts.shape}")
    n_trials, n_bins, n_units = counts.shape
    mask = np.ones((n_trials, n_bins), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    split = np.full(n_trials, "train", dtype=object) if split is None else np.asarray(split, dtype=object)
    trial_ids = np.arange(n_trials, dtype=np.int64) if trial_ids is None else np.asarray(trial_ids, np.int64)
    unit_ids = np.arange(n_units, dtype=np.int64) if unit_ids is None else np.asarray(unit_ids, np.int64)
    align_time = np.zeros(n_trials) if align_time is None else np.asarray(align_time, dtype=np.float64)
    data_vars: dict[str, Any] = {
        "counts": lazy_variable(counts) if lazy else (("trial", "time", "unit"), counts),
        "mask": (("trial", "time"), mask),
        "split": (("trial",), split.astype(str)),
        "align_time": (("trial",), align_time),
    }
    for name, values in (extra_trial_vars or {}).items():
        data_vars[name] = (("trial",), np.asarray(values))
    for name, values in (extra_unit_vars or {}).items():
        data_vars[name] = (("unit",), np.asarray(values))
    coords = {
        "trial": trial_ids,
        "time": time_offset + np.arange(n_bins) * float(bin_width),
        "unit": unit_ids,
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs={"bin_width": float(bin_width), **dict(attrs or {})})
    validate_session_dataset(ds)
    from nwb_ldns.data.attributes import describe_variables

    return describe_variables(ds)  # CF-style units / long_name (nwb_ldns/data/attributes.py)


def validate_session_dataset(ds: xr.Dataset) -> None:
    """Raise SessionContentError naming the first problem with a session Dataset."""
    missing = [name for name in REQUIRED_VARIABLES if name not in ds]
    if missing:
        raise SessionContentError(f"session dataset lacks variables {missing}; build it with make_session_dataset")
    if "bin_width" not in ds.attrs or not float(ds.attrs["bin_width"]) > 0:
        raise SessionContentError("session dataset needs a positive 'bin_width' attribute (seconds)")
    if ds["counts"].dims != ("trial", "time", "unit"):
        raise SessionContentError(f"counts must have dims (trial, time, unit), got {ds['counts'].dims}")
    if ds.sizes["trial"] == 0:
        raise SessionContentError("session has no trials; check the trial table and window options")
    if ds.sizes["unit"] == 0:
        raise SessionContentError("session has no units; check the units filter")
    from nwb_ldns.data.counts_cache import stored_dtype, trial_blocks

    if getattr(stored_dtype(ds["counts"]), "kind", "f") == "f":  # a cache of unsigned integers needs no check
        for _, counts in trial_blocks(ds["counts"]):  # block by block: a cached session never sits in memory
            if not np.all(np.isfinite(counts)):
                raise SessionContentError("counts contain NaN or infinite values")
            if (counts < 0).any():
                raise SessionContentError("counts contain negative values")
    if not ds["mask"].values.any(axis=1).all():
        empty = ds["trial"].values[~ds["mask"].values.any(axis=1)]
        raise SessionContentError(f"trials {empty[:10].tolist()} have no valid bins (empty trials)")


def subject_from_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """The source Subject fields as a dict (empty if the source had none)."""
    text = ds.attrs.get("source_subject", "")
    return json.loads(text) if text else {}


def split_of(ds: xr.Dataset, name: str) -> xr.Dataset:
    """The trials of one split ("train", "val", "test")."""
    return ds.isel(trial=np.flatnonzero(ds["split"].values == name))


def session_shape(session: xr.Dataset) -> dict:
    """The shape part of a model's data description (config.json): units, bins, bin width, time offset, unit ids."""
    return {
        "n_units": int(session.sizes["unit"]),
        "n_bins": int(session.sizes["time"]),
        "bin_width": float(session.attrs["bin_width"]),
        "time_offset": float(session["time"].values[0]),
        "unit_ids": [int(u) for u in session["unit"].values],
    }
