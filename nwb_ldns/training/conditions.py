"""What the denoiser is conditioned on: a per-trial angle (cos/sin) or a categorical trial column (one-hot).

Config `diffusion.condition` names a per-trial variable of the session Dataset (e.g. "trial_angle",
"trial_condition"); `diffusion.condition_kind` says how to read it:

- "angle": numbers in radians, encoded as [cos, sin] (cond_dim 2).
- "category" (ours, beyond the LDNS reference): one class per distinct train label, encoded as a one-hot vector
  (cond_dim = number of classes). The denoiser's condition MLP maps the one-hot to a class embedding that is added
  to the timestep embedding, exactly where the angle embedding goes.
- "trace" (the LDNS velocity mechanism, reference 3.4): a per-bin behaviour variable (trial, time, dim), e.g. the
  hand velocity, given to the denoiser as extra input channels at every step (cond_dim 0). Scaled per dimension by
  its train RMS (ours: the reference feeds m/s unscaled, which is already of order 1), NaN set to 0.
- "auto" (default): strings, booleans, and integer-valued numbers with at most MAX_AUTO_CLASSES distinct values are
  categories; other numbers (non-integer floats) are angles.

The data description (config.json "data"."condition") of a category model is
{"variable", "kind": "category", "encoding": "one_hot", "classes": [labels as str], "dim": n_classes,
"counts": {label: number of train trials}}; of an angle model {"variable", "kind": "angle", "encoding":
"cos_sin", "dim": 2}.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from nwb_ldns.errors import OptionError, SessionContentError

MAX_AUTO_CLASSES = 50  # "auto": an integer-valued variable with at most this many distinct values is a category
SAMPLE_KEYWORDS = ("uniform", "from-data")  # LDNSModel.sample(conditions=...) for a category model


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _label(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_labels(values: Any) -> np.ndarray:
    """Class labels (str array) of per-trial values: 3, 3.0 and "3" are all "3"; True is "True"."""
    arr = np.asarray(values, dtype=object).reshape(-1)
    return np.array([_label(v) for v in arr], dtype=str) if arr.size else np.array([], dtype=str)


def auto_kind(values: np.ndarray) -> str:
    """"category" or "angle" for a per-trial variable by the `condition_kind=auto` rule (module docstring)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUSb":
        return "category"
    if values.dtype.kind in "iu":
        return "category" if np.unique(values).size <= MAX_AUTO_CLASSES else "angle"
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if finite.size and np.all(finite == np.round(finite)) and np.unique(finite).size <= MAX_AUTO_CLASSES:
            return "category"
    return "angle"


def trial_columns(session: xr.Dataset) -> list[str]:
    """The session's trial-table columns (trial_<column> variables along trial)."""
    return [str(v) for v in session.data_vars if str(v).startswith("trial_") and session[v].dims == ("trial",)]


def describe_condition(session: xr.Dataset, name: str, kind: str, train: np.ndarray, val: np.ndarray
                       ) -> dict[str, Any]:
    """The data description of the condition variable `name` (module docstring), from the train trials.

    Raises OptionError when `name` is not a per-trial variable (or not numeric for an angle) and
    SessionContentError for missing labels or validation trials whose class no train trial has.
    """
    columns = trial_columns(session)
    if kind == "trace" or (name in session and session[name].dims[:2] == ("trial", "time")):
        return describe_trace(session, name, train)
    if name not in session or session[name].dims != ("trial",):
        raise OptionError(f"diffusion.condition={name!r} is not a per-trial variable of the session; choose one of "
                          f"its trial columns {columns or '(none available)'} (fit --condition COLUMN) or "
                          "--condition none")
    values = session[name].values
    if kind == "auto":
        kind = auto_kind(values)
    if kind == "angle":
        if values.dtype.kind not in "fiu":
            numeric = [c for c in columns if session[c].dtype.kind in "fiu"]
            raise OptionError(f"diffusion.condition={name!r} holds {values.dtype} values, not angles in radians; "
                              f"choose a numeric trial column ({numeric or 'none available'}), "
                              "--set diffusion.condition_kind=category, or --set diffusion.condition=none")
        return {"variable": name, "kind": "angle", "encoding": "cos_sin", "dim": 2}
    used = np.concatenate([train, val])
    missing = [int(session["trial"].values[i]) for i in used if _is_missing(values[i])]
    if missing:
        raise SessionContentError(f"condition variable {name} has no value for trials {missing[:10]}; drop those "
                                  "trials or choose another trial column")
    labels = category_labels(values)
    if values.dtype.kind in "biuf":  # numeric classes in numeric order ("2" before "10")
        classes = [str(c) for c in category_labels(np.unique(values[train]))]
    else:
        classes = sorted(set(labels[train].tolist()))
    unseen = ~np.isin(labels[val], classes)
    if unseen.any():
        trials, unknown = session["trial"].values[val][unseen], sorted(set(labels[val][unseen].tolist()))
        raise SessionContentError(
            f"validation trials {trials[:10].tolist()} have {name} labels {unknown} that no "
            f"train trial has (train classes: {classes}); give every class train trials, or drop those trials")
    counts = {c: int(n) for c, n in zip(classes, [(labels[train] == c).sum() for c in classes])}
    return {"variable": name, "kind": "category", "encoding": "one_hot", "classes": classes, "dim": len(classes),
            "counts": counts}


def describe_trace(session: xr.Dataset, name: str, train: np.ndarray) -> dict[str, Any]:
    """The data description of a per-bin behaviour condition (kind "trace")."""
    if name not in session or session[name].dims[:2] != ("trial", "time") or session[name].ndim != 3:
        raise OptionError(f"diffusion.condition={name!r} is not a behaviour trace of the session (trial, time, dim); "
                          "read one with --behavior SERIES (e.g. processing/behavior/hand_vel) and condition on "
                          "--condition velocity")
    if not bool(session["mask"].values.all()):
        raise OptionError("conditioning on a behaviour trace needs fixed-length trials (every bin observed); use "
                          "--align COLUMN --window START STOP")
    values = np.asarray(session[name].values[train], dtype=np.float64)
    rms = np.sqrt(np.nanmean(values ** 2, axis=(0, 1)))
    if not np.all(np.isfinite(rms)) or not np.all(rms > 0):
        raise SessionContentError(f"{name} is NaN or constant zero on the train trials; it cannot condition a model")
    dims = [str(d) for d in session[session[name].dims[2]].values] if session[name].dims[2] in session.coords \
        else [str(i) for i in range(values.shape[2])]
    return {"variable": name, "kind": "trace", "encoding": "extra_channels", "dim": int(values.shape[2]),
            "dims": dims, "scale": [float(v) for v in rms]}


def trace_channels(spec: Mapping[str, Any], values: Any) -> torch.Tensor:
    """The denoiser's extra input channels [n, time, dim] of behaviour traces: scaled by the train RMS, NaN -> 0."""
    traces = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0) / np.asarray(spec["scale"])
    return torch.from_numpy(traces.astype(np.float32))


def cond_dim(spec: Mapping[str, Any] | None) -> int:
    """Width of the denoiser's cond (embedding) input: 0 unconditional or trace, 2 angle, n classes category."""
    if not spec or spec.get("kind") == "trace":
        return 0
    return int(spec.get("dim", 2))


def trace_dim(spec: Mapping[str, Any] | None) -> int:
    """Extra denoiser input channels a trace condition adds (0 otherwise)."""
    return int(spec["dim"]) if spec and spec.get("kind") == "trace" else 0


def _unknown_label_error(spec: Mapping[str, Any], unknown: Sequence[str]) -> OptionError:
    return OptionError(f"unknown {spec['variable']} label(s) {list(unknown)}; this model knows the classes "
                       f"{list(spec['classes'])} (or ask for 'uniform' / 'from-data')")


def condition_tensor(spec: Mapping[str, Any], values: Any) -> torch.Tensor:
    """The denoiser's cond input [n, dim] float32: [cos, sin] of angles, or the one-hot of class labels."""
    if spec.get("kind", "angle") == "category":
        classes = list(spec["classes"])
        index = {c: i for i, c in enumerate(classes)}
        labels = category_labels(values)
        unknown = sorted(set(labels.tolist()) - set(index))
        if unknown:
            raise _unknown_label_error(spec, unknown)
        positions = torch.tensor([index[label] for label in labels.tolist()], dtype=torch.long)
        return torch.nn.functional.one_hot(positions, len(classes)).float()
    angles = np.asarray(values, dtype=np.float64)
    return torch.from_numpy(np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32))


def sample_categories(spec: Mapping[str, Any], n: int, conditions: Any, gen: torch.Generator
                      ) -> tuple[np.ndarray, str]:
    """(label per generated trial, source) for a category model.

    conditions: None or "from-data" (classes drawn with the train class frequencies), "uniform" (classes uniform
    at random), one label (str) for every trial ("label"), or exactly n labels ("given"). Draws use `gen`.
    """
    classes = list(spec["classes"])
    if conditions is None:
        conditions = "from-data"
    if isinstance(conditions, str) and conditions in SAMPLE_KEYWORDS:
        if conditions == "uniform":
            probs = torch.ones(len(classes), dtype=torch.float64)
        else:
            counts = spec.get("counts") or {}
            probs = torch.tensor([float(counts.get(c, 0)) for c in classes], dtype=torch.float64)
            if not float(probs.sum()) > 0:
                raise OptionError("this model stores no train class counts; sample with conditions='uniform' "
                                  "or give labels")
        picks = torch.multinomial(probs, n, replacement=True, generator=gen).numpy()
        return np.asarray(classes, dtype=str)[picks], conditions
    if isinstance(conditions, (str, bytes)) or np.ndim(conditions) == 0:
        conditions = [conditions]
    labels = category_labels(list(conditions))
    source = "given"
    if labels.size == 1:
        labels, source = np.full(n, labels[0]), "label"
    if labels.size != n:
        raise OptionError(f"give one class label or exactly {n} (one per trial), got {labels.size}")
    unknown = sorted(set(labels.tolist()) - set(classes))
    if unknown:
        raise _unknown_label_error(spec, unknown)
    return labels, source


def condition_variable(column: str) -> str:
    """`--condition COLUMN` -> the session Dataset variable trial_COLUMN ("none" stays "none": unconditional)."""
    column = column.strip()
    if column.lower() in ("none", "null", ""):
        return "none"
    return column if column.startswith("trial_") else f"trial_{column}"


def condition_overrides(column: str, data) -> dict[str, object]:
    """Config overrides of `--condition COLUMN`; `angle` also names the reach angle of an MC_Maze reading, and
    `velocity` (or `behavior`) the session's behaviour trace (extra denoiser channels, the LDNS velocity model)."""
    if column.strip().lower() in ("velocity", "behavior", "behaviour"):
        if "behavior" not in data:
            raise OptionError("--condition velocity needs a behaviour trace: add --behavior SERIES (e.g. "
                              "processing/behavior/hand_vel), or read an MC_Maze file with its recipe")
        return {"diffusion.condition": "behavior", "diffusion.condition_kind": "trace"}
    variable = condition_variable(column)
    if variable == "trial_angle" and "trial_angle" not in data and "trial_reach_angle" in data:
        return {"diffusion.condition": "trial_reach_angle", "diffusion.condition_kind": "angle"}
    return {"diffusion.condition": variable}
