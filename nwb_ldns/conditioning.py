"""Conditions taken from real trials: `sample --condition angle=from:SESSION.nwb` (and velocity traces).

Why: the paper conditions on the reach angles and hand-velocity traces of held-out real trials, then checks that
the generated spikes carry them. The session is read the way the model's training session was read (the reading
options recorded in its config.json), so bins, windows and units line up.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Mapping

import numpy as np

from nwb_ldns.errors import OptionError, SessionContentError

FROM_PREFIX = "from:"


def reading_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """load_session keyword arguments that read a session as the model's training session was read."""
    attrs = data.get("session_attrs") or {}
    if attrs.get("recipe"):
        return {"recipe": attrs["recipe"]}
    options: dict[str, Any] = {"bin_width": float(data["bin_width"])}
    if attrs.get("window_length"):
        options["window_length"] = float(attrs["window_length"])
    else:
        options["trials_table"] = attrs.get("trials_table") or "trials"
        window = json.loads(attrs.get("window") or "null")
        if window is not None:
            options["window"] = (float(window[0]), float(window[1]))
            options["align"] = attrs.get("align")
    for key, option in (("unit_filter", "unit_filter"), ("counts_series", "counts_series"),
                        ("channel_filter", "channel_filter"), ("behavior_series", "behavior")):
        if attrs.get(key):
            options[option] = attrs[key]
    return options


def conditions_from_session(data: Mapping[str, Any], source: str | os.PathLike, n: int, *, split: str = "test",
                            per_trace: int = 1) -> tuple[np.ndarray, str]:
    """(conditions of n generated trials, a description): the model's condition variable on the `split` trials of
    `source`, each used per_trace times in trial order, cycling when n is larger.

    Angle and category models get one value per trial; a trace model (velocity) gets (n, bins, dims) traces.
    """
    from nwb_ldns.data import load_session

    spec = data.get("condition")
    if not spec:
        raise OptionError("this model is unconditional; --condition ...=from:SESSION needs a conditioned model")
    if per_trace < 1:
        raise OptionError(f"--per-trace must be at least 1, got {per_trace}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader's notes were shown when the model was fitted
        session = load_session(source, **reading_options(data))
    rows = np.flatnonzero(session["split"].values == split)
    if rows.size == 0:
        present = sorted(set(session["split"].values.tolist()))
        raise OptionError(f"{source} has no {split!r} trials (it has {present}); choose one with --split")
    variable = spec["variable"]
    if variable not in session:
        raise SessionContentError(f"{source} has no {variable} for its trials (the model's condition); read it as "
                                  "the model's training session was read, or pass another session")
    values = session[variable].values[rows]
    if spec.get("kind") == "trace":
        if values.shape[1:] != (int(data["n_bins"]), int(spec["dim"])):
            raise SessionContentError(f"{source}: {variable} of shape {values.shape[1:]} per trial; the model needs "
                                      f"({data['n_bins']} bins, {spec['dim']} dims)")
        values = np.nan_to_num(values.astype(np.float32), nan=0.0)
    elif spec.get("kind") != "category":
        values = values.astype(np.float64)
        finite = np.isfinite(values)
        values, rows = values[finite], rows[finite]
        if values.size == 0:
            raise SessionContentError(f"{source}: no {split} trial has a finite {variable}")
    order = np.repeat(np.arange(len(values)), per_trace)
    picked = np.resize(order, n)
    described = (f"{variable} of the {split} trials of {os.path.basename(str(source))} ({len(values)} trials, "
                 f"{per_trace} per trial{', cycled' if n > len(order) else ''})")
    return values[picked], described
