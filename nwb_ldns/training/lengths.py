"""`training.max_bins`: trials longer than this many bins are dropped before training, and counted.

Why: the reference trains its human model on sentences of at most 512 bins (`max_seqlen`, 10.24 s at 20 ms;
ldns-reference.md 1b): its networks and sampling masks are sized for that window, and the few longer sentences
would otherwise set the padded length of every trial. The human preset sets 512; the other presets keep every
trial (None). The note joins the reader's notes, so config.json (data.session_attrs.reader_notes), the training
log's "start" record and `fit`'s output all say how many trials were dropped.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import xarray as xr

from nwb_ldns.config import DEFAULT_PRESET, resolve_config
from nwb_ldns.errors import SessionContentError


def max_bins_setting(described: Mapping[str, Any] | None, preset: str | None,
                     overrides: Mapping[str, Any] | None) -> int | None:
    """training.max_bins of the run: the resumed run's saved config, else the preset with the overrides."""
    if described is not None:
        return (described.get("config") or {}).get("training", {}).get("max_bins")
    return resolve_config(preset or DEFAULT_PRESET, overrides)["training"]["max_bins"]


def trial_lengths(session: xr.Dataset) -> np.ndarray:
    """Bins from each trial's start to its last valid bin (trials are left-aligned; 0 for an empty trial)."""
    mask = np.asarray(session["mask"].values, dtype=bool)
    last = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), last, 0)


def drop_long_trials(session: xr.Dataset, max_bins: int | None) -> tuple[xr.Dataset, str | None]:
    """(session without the trials longer than `max_bins`, cropped to its longest remaining trial; the note).

    Nothing changes when `max_bins` is None or every trial fits. The note (also appended to the session's
    `reader_notes`) counts the dropped trials per split.
    """
    if max_bins is None:
        return session, None
    lengths = trial_lengths(session)
    long = lengths > int(max_bins)
    if not long.any():
        return session, None
    width = float(session.attrs["bin_width"])
    limit = f"{int(max_bins)} bins ({int(max_bins) * width:g} s, training.max_bins)"
    split = session["split"].values.astype(str)
    keep = ~long
    if not (keep & (split == "train")).any():
        raise SessionContentError(
            f"every train trial is longer than {limit}, so none is left to train on; keep longer trials with --set "
            f"training.max_bins={int(lengths.max())} (or none), or read shorter trials (--window)"
        )
    per_split = ", ".join(f"{name} {int((long & (split == name)).sum())}" for name in dict.fromkeys(split[long]))
    note = (f"dropped {int(long.sum())} of {len(long)} trials longer than {limit}, as the LDNS reference does "
            f"({per_split}); keep them with --set training.max_bins=none")
    trimmed = session.isel(trial=np.flatnonzero(keep), time=slice(0, int(lengths[keep].max())))
    notes = json.loads(trimmed.attrs.get("reader_notes") or "[]")
    trimmed.attrs = {**trimmed.attrs, "reader_notes": json.dumps([*notes, note])}  # the caller's attrs stay
    return trimmed, note
