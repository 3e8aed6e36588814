"""Per-condition PSTH correlation, real vs generated: did a conditioned model learn what each condition looks like?

A condition is a categorical trial variable that the real session and a generated set share (a category-
conditioned model writes the label it was asked for, e.g. `trial_condition`), or the reach angle binned into 8
direction sectors of 45 degrees (an angle-conditioned model writes `trial_reach_angle`; for a velocity-conditioned
set the angle is read from its requested velocity the way the MC_Maze recipe reads it from the real one).

Per condition, the PSTH (trial-averaged rate in Hz, then smoothed along time with a 30 ms Gaussian normalised
over the bins some trial covers) of the real training trials of that condition is correlated with the PSTH of
the generated trials requested for it: Pearson r across all (time, unit) entries. Because the unit means and the
common time course make that r high for any model with the right rates, the condition-specific part is reported
too: r of each PSTH minus the mean PSTH over the compared conditions (each set its own mean), which is about 0 for
a model that ignores the condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.ndimage import convolve1d

from nwb_ldns.metrics.rates import psth
from nwb_ldns.metrics.smoothing import gaussian_window

PSTH_SMOOTHING_S = 0.03
N_SECTORS = 8
MAX_CATEGORIES = 20  # more classes than this is not a condition worth a PSTH per class (e.g. a trial id)
ANGLE_VARIABLE = "trial_reach_angle"
PREFERRED = ("trial_condition",)


@dataclass
class Conditions:
    """How the trials of the real set and of one generated set fall into conditions (labels: str or None)."""

    variable: str
    kind: str  # "category" or "angle_sector"
    order: list[str]  # every label in display order
    real: np.ndarray  # object[trial] labels of the real trials (None: no condition)
    generated: np.ndarray  # object[trial] labels of the generated trials


def angle_sectors(angles, n_sectors: int = N_SECTORS) -> np.ndarray:
    """object[trial]: the direction sector ("0 deg", "45 deg", ...) of each angle in radians; None for NaN.

    Sectors are centred on multiples of 360/n_sectors degrees, so sector "0 deg" holds -22.5 .. 22.5 degrees.
    """
    angles = np.asarray(angles, dtype=np.float64)
    width = 2 * np.pi / n_sectors
    finite = np.isfinite(angles)
    sector = np.floor((np.where(finite, angles, 0.0) + width / 2) / width).astype(np.int64) % n_sectors
    labels = np.array([sector_label(k, n_sectors) for k in sector], dtype=object)
    labels[~finite] = None
    return labels


def sector_label(k: int, n_sectors: int = N_SECTORS) -> str:
    return f"{k * 360 / n_sectors:g} deg"


def _category_labels(values: np.ndarray) -> np.ndarray | None:
    """str labels of a categorical trial variable, or None when it is not categorical (float, too many classes)."""
    values = np.asarray(values)
    if values.dtype.kind not in "OUSbiu":
        return None
    labels = np.array([str(v) for v in values.tolist()], dtype=object)
    return labels if len(set(labels.tolist())) <= MAX_CATEGORIES else None


def _trial_angles(ds: xr.Dataset) -> np.ndarray | None:
    """The reach angle of each trial: the variable, or read from a (requested) 2-d velocity like the recipe does."""
    if ANGLE_VARIABLE in ds:
        return np.asarray(ds[ANGLE_VARIABLE].values, dtype=np.float64)
    from nwb_ldns.data.nlb import MC_MAZE, reach_angle

    if "behavior" in ds and ds["behavior"].shape[2] == 2 and ds.sizes["time"] > MC_MAZE.angle_bin:
        return reach_angle(np.asarray(ds["behavior"].values, dtype=np.float64), MC_MAZE.angle_bin)
    return None


def _shared_categories(real: xr.Dataset, ds: xr.Dataset) -> list[str]:
    names = [n for n in ds.data_vars if n.startswith("trial_") and n != ANGLE_VARIABLE and n in real
             and ds[n].dims == ("trial",) and real[n].dims == ("trial",)]
    return sorted(names, key=lambda n: (n not in PREFERRED, n))


def match_conditions(real: xr.Dataset, ds: xr.Dataset) -> Conditions | None:
    """The condition shared by the real trials and a generated set: the reach angle (8 sectors) when both have
    one, else the first shared categorical trial variable (`trial_condition` first); None without either."""
    if ANGLE_VARIABLE in real:
        generated_angles = _trial_angles(ds)
        if generated_angles is not None:
            order = [sector_label(k) for k in range(N_SECTORS)]
            return Conditions(ANGLE_VARIABLE, "angle_sector", order, angle_sectors(real[ANGLE_VARIABLE].values),
                              angle_sectors(generated_angles))
    for name in _shared_categories(real, ds):
        real_labels, labels = _category_labels(real[name].values), _category_labels(ds[name].values)
        if real_labels is not None and labels is not None:
            order = sorted(set(real_labels.tolist()) | set(labels.tolist()))
            return Conditions(name, "category", order, real_labels, labels)
    return None


def smoothed_psth(counts, bin_width: float, labels: np.ndarray, mask=None,
                  std_s: float = PSTH_SMOOTHING_S) -> dict[str, np.ndarray]:
    """{label: float64[time, unit]} trial-averaged rate (Hz) of the trials with that label, smoothed along time.

    The Gaussian (std_s, normalised to sum 1) is applied to the PSTH and divided by the window mass over the bins
    some trial covers, so the trial edges are not pulled towards 0 and uncovered bins stay NaN. Trials labelled
    None are left out.
    """
    labels = np.asarray(labels, dtype=object)
    keep = np.array([label is not None for label in labels.tolist()], dtype=bool)
    if not keep.any():
        return {}
    counts = np.asarray(counts)[keep]
    mask = None if mask is None else np.asarray(mask, dtype=bool)[keep]
    window = gaussian_window(std_s / float(bin_width))
    origin = -1 if len(window) % 2 == 0 else 0  # as smooth_counts: np.convolve(x, window, mode="same")
    out = {}
    for label, rates in psth(counts, bin_width, labels[keep].astype(str), mask).items():
        covered = np.isfinite(rates)
        total = convolve1d(np.where(covered, rates, 0.0), window, axis=0, mode="constant", origin=origin)
        weight = convolve1d(covered.astype(np.float64), window, axis=0, mode="constant", origin=origin)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[label] = np.where(covered, total / weight, np.nan)
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson r over the entries finite in both; None when fewer than 3 or one side is constant."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return None
    x, y = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else None


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def psth_correlation(real_psth: dict[str, np.ndarray], generated_psth: dict[str, np.ndarray],
                     real_counts: dict[str, int], generated_counts: dict[str, int], order: list[str]) -> dict:
    """Per condition (present in both): r and the condition-specific r; their means over conditions."""
    shared = [label for label in order if label in real_psth and label in generated_psth]
    real_mean = np.nanmean([real_psth[k] for k in shared], axis=0) if shared else None
    generated_mean = np.nanmean([generated_psth[k] for k in shared], axis=0) if shared else None
    per = {}
    for label in shared:
        specific = (_pearson(real_psth[label] - real_mean, generated_psth[label] - generated_mean)
                    if len(shared) > 1 else None)
        per[label] = {"r": _pearson(real_psth[label], generated_psth[label]), "r_specific": specific,
                      "n_real": int(real_counts.get(label, 0)), "n_generated": int(generated_counts.get(label, 0))}
    return {"mean_r": _mean([v["r"] for v in per.values()]),
            "mean_r_specific": _mean([v["r_specific"] for v in per.values()]),
            "n_conditions": len(per), "conditions": per}


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(np.array([v for v in labels.tolist() if v is not None], dtype=str),
                               return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def _mask(ds: xr.Dataset) -> np.ndarray | None:
    return ds["mask"].values if "mask" in ds else None


def condition_psth_correlation(train: xr.Dataset, ds: xr.Dataset, std_s: float = PSTH_SMOOTHING_S) -> dict | None:
    """The per-condition PSTH correlation of one set (generated, or held-out real) with the real training trials;
    None when they share no condition."""
    conditions = match_conditions(train, ds)
    if conditions is None:
        return None
    bin_width = float(train.attrs["bin_width"])
    real_psth = smoothed_psth(train["counts"].values, bin_width, conditions.real, _mask(train), std_s)
    generated_psth = smoothed_psth(ds["counts"].values, bin_width, conditions.generated, _mask(ds), std_s)
    if train.sizes["time"] != ds.sizes["time"]:  # compare the bins both have (a set sampled at another length)
        n = min(train.sizes["time"], ds.sizes["time"])
        real_psth = {k: v[:n] for k, v in real_psth.items()}
        generated_psth = {k: v[:n] for k, v in generated_psth.items()}
    summary = psth_correlation(real_psth, generated_psth, _label_counts(conditions.real),
                               _label_counts(conditions.generated), conditions.order)
    return {"variable": conditions.variable, "kind": conditions.kind, **summary}


def condition_psth(train: xr.Dataset, heldout: xr.Dataset, generated: list[xr.Dataset]) -> dict | None:
    """evaluate()'s `condition_psth` entry: per generated set (None where it has no shared condition) and the
    held-out real trials (what trial-to-trial noise allows); None when no generated set has a condition."""
    per_set = [condition_psth_correlation(train, ds) for ds in generated]
    if all(entry is None for entry in per_set):
        return None
    floors = {}
    if heldout.sizes["trial"]:
        for entry in per_set:
            if entry is not None and entry["variable"] not in floors:
                floors[entry["variable"]] = condition_psth_correlation(train, heldout)
    return {"smoothing_s": PSTH_SMOOTHING_S, "n_sectors": N_SECTORS, "heldout_real": floors, "generated": per_set}


def condition_psth_lines(result: dict, names: list[str]) -> list[str]:
    """One line per set with a condition: mean r over conditions (and the condition-specific part)."""
    entry = result.get("condition_psth")
    if not entry:
        return []
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731

    def describe(summary: dict) -> str:
        return (f"r {fmt(summary['mean_r'])}, condition-specific r {fmt(summary['mean_r_specific'])} "
                f"over {summary['n_conditions']} conditions")

    lines = [f"per-condition PSTH correlation vs real training trials ({entry['smoothing_s'] * 1e3:g} ms smoothing; "
             f"angles in {entry['n_sectors']} sectors):"]
    for variable, floor in entry["heldout_real"].items():
        if floor is not None:
            lines.append(f"  held-out real ({variable}): {describe(floor)}")
    for name, summary in zip(names, entry["generated"]):
        if summary is not None:
            lines.append(f"  {name} ({summary['variable']}): {describe(summary)}")
    return lines
