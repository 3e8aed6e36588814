"""`load_sessions`: several recording sessions with the same units/channels as one session Dataset.

Why: the LDNS human model is trained on the sentences of every recording day pooled (ldns-reference.md 1b), and a
user with several sessions of one array wants one model of all of them. Each session is read with the same options
and keeps its own train/val/test split (for the Willett release: the release's partitions, one file per day); the
trials are concatenated, padded to the longest, and renumbered so trial ids stay unique (`trial_session` and
`trial_source_trial` say where each came from). The attrs name every source session (`source_sessions`, JSON),
which the model's config.json and the ndx-ldns provenance of generated files carry on.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Sequence

import numpy as np
import xarray as xr

from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.errors import OptionError, SessionContentError

# attrs that say how a session was read: they must agree between the sessions pooled into one Dataset
READING_ATTRS = ("recipe", "bin_width", "trials_table", "align", "window", "window_length", "unit_filter",
                 "counts_series", "channel_filter", "behavior_series")
# per-session identity kept in each `source_sessions` entry (attr name -> entry key)
SOURCE_FIELDS = {"source_path": "path", "source_identifier": "identifier", "source_sha256": "sha256",
                 "source_units_object_id": "units_object_id", "source_session_start_time": "session_start_time"}


def load_sessions(paths: Sequence[str | os.PathLike], **options: Any) -> xr.Dataset:
    """Read every session with the same `load_session` options and pool their trials into one Dataset.

    One path gives exactly `load_session(path, **options)`. Several must have the same units (same ids, in the
    same order; a mismatch is an OptionError naming both files and the fix) and bin width; the result has
    unique trial ids, every session's split, and `source_sessions` naming each source (path, identifier,
    sha256, ...). Notes of the reader are re-issued with the file name in front.
    """
    from nwb_ldns.data.session import load_session

    paths = [str(p) for p in paths]
    if not paths:
        raise OptionError("no session given; pass at least one NWB file")
    if len(paths) == 1:
        return load_session(paths[0], **options)
    sessions = []
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sessions.append(load_session(path, **options))
        for warning in caught:
            message = f"{os.path.basename(path)}: {warning.message}"
            warnings.warn_explicit(message, warning.category, warning.filename, warning.lineno)
    return concat_sessions(sessions)


def concat_sessions(sessions: Sequence[xr.Dataset]) -> xr.Dataset:
    """Pool session Datasets (read with the same options) along trial; see `load_sessions`."""
    _check_duplicates(sessions)
    _check_same_reading(sessions)
    _check_same_units(sessions)
    first = sessions[0]
    n_bins = max(int(ds.sizes["time"]) for ds in sessions)
    counts = np.concatenate([_pad(ds["counts"].values, n_bins) for ds in sessions])
    mask = np.concatenate([_pad(ds["mask"].values, n_bins) for ds in sessions])
    trial_vars = _common_trial_vars(sessions)
    trial_vars["trial_session"] = np.concatenate([np.full(ds.sizes["trial"], i) for i, ds in enumerate(sessions)])
    trial_vars["trial_source_trial"] = np.concatenate([ds["trial"].values for ds in sessions])
    unit_vars = {name: first[name].values for name in first.data_vars
                 if name.startswith("unit_") and first[name].dims == ("unit",)
                 and all(name in ds and np.array_equal(ds[name].values, first[name].values) for ds in sessions)}
    pooled = make_session_dataset(
        counts,
        float(first.attrs["bin_width"]),
        mask=mask,
        split=np.concatenate([ds["split"].values.astype(str) for ds in sessions]),
        trial_ids=np.arange(len(counts), dtype=np.int64),
        unit_ids=first["unit"].values,
        align_time=np.concatenate([ds["align_time"].values for ds in sessions]),
        time_offset=float(first["time"].values[0]),
        extra_trial_vars=trial_vars,
        extra_unit_vars=unit_vars,
        attrs=pooled_attrs(sessions),
    )
    if all("behavior" in ds for ds in sessions):
        behavior = np.concatenate([_pad(ds["behavior"].values, n_bins) for ds in sessions])
        pooled = pooled.assign(behavior=(("trial", "time", "behavior_dim"), behavior))
        pooled = pooled.assign_coords(behavior_dim=first["behavior_dim"].values)
    return pooled


def session_paths(session: xr.Dataset) -> list[str]:
    """Every source path of a session Dataset (all pooled sessions, else its one `source_path`)."""
    entries = json.loads(session.attrs.get("source_sessions") or "[]")
    if entries:
        return [str(entry.get("path", "")) for entry in entries if entry.get("path")]
    path = str(session.attrs.get("source_path", "") or "")
    return [path] if path else []


def pooled_attrs(sessions: Sequence[xr.Dataset]) -> dict[str, Any]:
    """Attrs of the pooled Dataset: the common reading options, every source in `source_sessions`, the scalar
    source_* attrs summarising them (joined ids and checksums, the earliest start time), notes per file."""
    first = sessions[0]
    entries = []
    for ds in sessions:
        entry = {key: str(ds.attrs.get(attr, "")) for attr, key in SOURCE_FIELDS.items()}
        entry["n_trials"] = int(ds.sizes["trial"])
        entries.append(entry)
    attrs = {k: v for k, v in first.attrs.items() if not k.startswith("source_") and k != "reader_notes"}
    names = [os.path.basename(entry["path"]) or entry["identifier"] for entry in entries]
    starts = sorted(entry["session_start_time"] for entry in entries if entry["session_start_time"])
    subjects = {str(ds.attrs.get("source_subject", "")) for ds in sessions}
    notes = [f"{name}: {note}" for name, ds in zip(names, sessions)
             for note in json.loads(ds.attrs.get("reader_notes") or "[]")]
    if len(subjects) > 1:
        notes.append("the sessions have different Subjects; generated files get a placeholder Subject")
    attrs.update({
        "source_sessions": json.dumps(entries),
        "source_path": "; ".join(entry["path"] for entry in entries),
        "source_identifier": "; ".join(entry["identifier"] for entry in entries),
        "source_sha256": ",".join(entry["sha256"] for entry in entries),
        "source_units_object_id": ",".join(e["units_object_id"] for e in entries) if any(
            e["units_object_id"] for e in entries) else "",
        "source_session_description": f"{len(entries)} recorded sessions pooled: {', '.join(names)}",
        "source_session_start_time": starts[0] if starts else "",
        "source_subject": subjects.pop() if len(subjects) == 1 else "",
        "source_nwb_version": ",".join(sorted({str(ds.attrs.get("source_nwb_version", "")) for ds in sessions})),
        "reader_notes": json.dumps(notes),
    })
    return attrs


def _pad(values: np.ndarray, n_bins: int) -> np.ndarray:
    """(trial, time, ...) values right-padded with zeros (False) along time to n_bins."""
    width = [(0, 0)] * values.ndim
    width[1] = (0, n_bins - values.shape[1])
    return np.pad(values, width)


def _common_trial_vars(sessions: Sequence[xr.Dataset]) -> dict[str, np.ndarray]:
    """The per-trial variables every session has (with one kind of value: text, number or boolean)."""
    first = sessions[0]
    out = {}
    for name in first.data_vars:
        if not name.startswith("trial_") or first[name].dims != ("trial",):
            continue
        if not all(name in ds and ds[name].dims == ("trial",) for ds in sessions):
            continue
        kinds = {_kind(ds[name].values) for ds in sessions}
        if len(kinds) == 1:
            out[name] = np.concatenate([ds[name].values for ds in sessions])
    return out


def _kind(values: np.ndarray) -> str:
    kind = values.dtype.kind
    return "text" if kind in "USO" else "bool" if kind == "b" else "number"


def _label(ds: xr.Dataset) -> str:
    return os.path.basename(str(ds.attrs.get("source_path", ""))) or str(ds.attrs.get("source_identifier", "?"))


def _check_duplicates(sessions: Sequence[xr.Dataset]) -> None:
    """The same file (or the same session under two names) twice would count its trials twice."""
    seen: dict[tuple[str, str], str] = {}
    for ds in sessions:
        key = (str(ds.attrs.get("source_identifier", "")), str(ds.attrs.get("source_sha256", "")))
        if key in seen and all(key):
            raise OptionError(f"{_label(ds)} is the same session as {seen[key]} (identifier {key[0]}, same sha256); "
                              "pass each session once")
        seen[key] = _label(ds)


def _check_same_reading(sessions: Sequence[xr.Dataset]) -> None:
    first = sessions[0]
    for ds in sessions[1:]:
        for name in READING_ATTRS:
            a, b = first.attrs.get(name, ""), ds.attrs.get(name, "")
            if a != b:
                raise OptionError(
                    f"{_label(ds)} was read with {name}={b!r} but {_label(first)} with {name}={a!r}; sessions fitted "
                    "together must be read the same way: give the reading options explicitly (e.g. --bin-width, "
                    "--recipe none, --counts-series), or fit them separately"
                )
        offsets = float(first["time"].values[0]), float(ds["time"].values[0])
        if not np.isclose(*offsets):
            raise OptionError(f"{_label(ds)}'s trials start {offsets[1]:g} s from their alignment point, "
                              f"{_label(first)}'s {offsets[0]:g} s; use the same --align/--window for every session")


def _check_same_units(sessions: Sequence[xr.Dataset]) -> None:
    """Same number and ids of units/channels in every session (one model has one output per unit)."""
    first = sessions[0]
    ids = first["unit"].values
    for ds in sessions[1:]:
        other = ds["unit"].values
        if len(other) == len(ids) and np.array_equal(other, ids):
            continue
        if len(other) != len(ids):
            problem = f"{len(other)} units/channels, {_label(first)} has {len(ids)}"
        else:
            at = int(np.flatnonzero(other != ids)[0])
            problem = f"unit/channel id {int(other[at])} at position {at}, where {_label(first)} has {int(ids[at])}"
        raise SessionContentError(
            f"{_label(ds)} has {problem}; one model needs the same units in every session: select the same ones "
            "in each (e.g. --channels \"location==area 6v\" or --units-filter), or fit the sessions separately"
        )
