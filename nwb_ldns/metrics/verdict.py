"""Equal-size verdict: every set, and the real-vs-real floor, judged on subsets of the SAME number of trials k.

Why: the protocol table's noise floor compares a random half of the reference trials with the other half, so it
is computed on sets of a different size than the generated set and can sit above every model (fewer trials,
noisier statistics). Here the floor is K random k-trial subsets of real trials NOT in the reference (the pool:
e.g. train+val when the reference is the test split) against the FULL reference, and each generated set is K
random k-trial subsets of itself against the same full reference. A multiple of the floor near 1 means "as close
to the reference as other real trials are"; "beats" says a set is lower than a baseline by more than both
bootstrap stds (lower is better for every statistic).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from nwb_ldns.metrics.headline import EXTRA_KEYS, HEADLINE_KEYS, SetStats, compare, summarise

VERDICT_KEYS: tuple[str, ...] = tuple(HEADLINE_KEYS) + tuple(EXTRA_KEYS)
MIN_RESAMPLES = 5
SHORT = {"kl_pop_count": "KL", "rmse_corr": "corr", "rmse_corr_pairs": "corr pairs", "rmse_mean_isi": "mean ISI",
         "rmse_std_isi": "std ISI", "rmse_rate_hz": "rate"}
BEATS_KEYS = ("kl_pop_count", "rmse_corr")  # what the terminal's last column summarises
SPLIT_ORDER = ("train", "val", "test")


def set_label(attrs: Mapping[str, Any], fallback: str = "") -> str:
    """'LDNS lorenz ddim-50', 'PSTH-Poisson', 'LDS-Poisson' from provenance attrs; fallback without model_name."""
    model = str(attrs.get("model_name") or "")
    if not model:
        return fallback
    try:
        config = json.loads(attrs.get("model_config") or "{}")
    except (TypeError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    preset = config.get("preset") or inner.get("preset") or config.get("baseline") or ""
    parts = [model]
    if preset and str(preset).lower() not in model.lower():
        parts.append(str(preset))
    sampler, steps = str(attrs.get("sampler") or ""), attrs.get("sampler_steps")
    if sampler and sampler != "ancestral":
        parts.append(f"{sampler}-{int(steps)}" if steps not in (None, "", 0) else sampler)
    if "spike_history" in str(attrs.get("conditioning") or ""):
        parts.append("+ spike history")
    return " ".join(parts)


def display_name(entry: Mapping[str, Any]) -> str:
    """'label (file name)' for tables; just the name when there is no label or both are the same."""
    label, name = str(entry.get("label") or ""), str(entry.get("name") or "")
    return f"{label} ({name})" if label and label != name else name


def is_baseline(attrs: Mapping[str, Any]) -> bool:
    """A set made by a non-LDNS model (PSTH-Poisson, LDS-Poisson) is a baseline."""
    model = str(attrs.get("model_name") or "")
    return bool(model) and model != "LDNS"


def pool_trials(real: xr.Dataset, split: str) -> tuple[xr.Dataset, str]:
    """Real trials neither in the reference split nor generated, and their name ('train+val', ...)."""
    splits = real["split"].values
    keep = ~np.isin(splits, [split, "generated"])
    present = set(splits[keep].tolist())
    ordered = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))
    return real.isel(trial=np.flatnonzero(keep)), "+".join(ordered)


def _mask(ds: xr.Dataset) -> np.ndarray | None:
    return ds["mask"].values if "mask" in ds else None


def _subset_weights(subsets: list[np.ndarray], n: int) -> np.ndarray:
    weights = np.zeros((len(subsets), n))
    for row, idx in zip(weights, subsets):
        row[idx] = 1.0
    return weights


def _spread(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    values = {key: np.array([f[key] for f in folds], dtype=np.float64) for key in VERDICT_KEYS}
    return ({k: float(np.mean(v)) for k, v in values.items()}, {k: float(np.std(v)) for k, v in values.items()})


def _as_stats(ds: xr.Dataset, subsets: list[np.ndarray], bin_width: float) -> list[SetStats]:
    """One SetStats per subset of trial indices, in one summarise pass."""
    return summarise(ds["counts"].values, bin_width, _mask(ds), _subset_weights(subsets, ds.sizes["trial"]))


def _folds(ds: xr.Dataset, subsets: list[np.ndarray], against: SetStats, bin_width: float, maxval: int
           ) -> list[dict[str, float]]:
    return [compare(s, against, maxval, extras=True) for s in _as_stats(ds, subsets, bin_width)]


def _ratio(a: float, b: float) -> float:
    return float(a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")


def _lower(a_mean: float, a_std: float, b_mean: float, b_std: float) -> bool:
    """a lower than b by more than both stds (NaN compares False)."""
    return bool((a_mean + a_std) < (b_mean - b_std))


def equal_size_verdict(reference: xr.Dataset, pool: xr.Dataset, pool_name: str, generated: Sequence[xr.Dataset],
                       names: Sequence[str], labels: Sequence[str], baseline_flags: Sequence[bool], *,
                       maxval: int, n_resamples: int = 5, seed: int = 42) -> dict | None:
    """The verdict dict (module docstring); None when fewer than 2 trials per subset are possible.

    k = min(|reference|, |pool|, smallest generated set). With an empty pool the floor falls back to disjoint
    halves of the reference (k = |reference| // 2, one half vs the other) and "fallback" says so.
    """
    bin_width = float(reference.attrs["bin_width"])
    m = int(reference.sizes["trial"])
    n_gen = min(int(ds.sizes["trial"]) for ds in generated)
    fallback = pool.sizes["trial"] == 0
    k = min(m // 2, n_gen) if fallback else min(m, int(pool.sizes["trial"]), n_gen)
    if k < 2:
        return None
    K = max(int(n_resamples), MIN_RESAMPLES)
    rng = np.random.RandomState(seed)
    (full_ref,) = summarise(reference["counts"].values, bin_width, _mask(reference))
    if fallback:
        floor_folds = []
        for _ in range(K):
            order = rng.permutation(m)
            half, other = np.sort(order[:k]), np.sort(order[k:])
            a, b = _as_stats(reference, [half, other], bin_width)
            floor_folds.append(compare(a, b, maxval, extras=True))
    else:
        subsets = [rng.choice(pool.sizes["trial"], k, replace=False) for _ in range(K)]
        floor_folds = _folds(pool, subsets, full_ref, bin_width, maxval)
    floor_mean, floor_std = _spread(floor_folds)
    sets = []
    for ds, name, label, base in zip(generated, names, labels, baseline_flags):
        subsets = [rng.choice(ds.sizes["trial"], k, replace=False) for _ in range(K)]
        mean, std = _spread(_folds(ds, subsets, full_ref, bin_width, maxval))
        sets.append({"name": name, "label": label, "baseline": bool(base), "mean": mean, "std": std,
                     "multiple_of_floor": {key: _ratio(mean[key], floor_mean[key]) for key in VERDICT_KEYS}})
    for entry in sets:
        entry["beats"], entry["loses_to"] = {}, {}
        for other in sets:
            if other is entry or not other["baseline"]:
                continue
            args = [(entry["mean"][key], entry["std"][key], other["mean"][key], other["std"][key])
                    for key in VERDICT_KEYS]
            entry["beats"][other["name"]] = {key: _lower(*a) for key, a in zip(VERDICT_KEYS, args)}
            entry["loses_to"][other["name"]] = {key: _lower(a[2], a[3], a[0], a[1]) for key, a in
                                                zip(VERDICT_KEYS, args)}
    return {"k": int(k), "n_resamples": K, "seed": int(seed), "pool": "halves of the reference" if fallback
            else pool_name, "fallback": bool(fallback), "keys": list(VERDICT_KEYS),
            "floor": {"mean": floor_mean, "std": floor_std}, "sets": sets}


def _times(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"x{value:.2g} floor" if value < 10 else f"x{value:.0f} floor"


def _against(entry: dict, sets: list[dict]) -> str:
    labels = {s["name"]: (s.get("label") or s["name"]) for s in sets}
    parts = []
    for word, table in (("beats", entry.get("beats", {})), ("loses to", entry.get("loses_to", {}))):
        for base, flags in table.items():
            keys = [SHORT[key] for key in BEATS_KEYS if flags.get(key)]
            if keys:
                parts.append(f"{word} {labels.get(base, base)} on {', '.join(keys)}")
    if not parts and (entry.get("beats") or {}):
        parts.append("within noise of " + ", ".join(labels.get(b, b) for b in entry["beats"]))
    return "; ".join(parts) or "-"


def verdict_rows(result: dict) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    """(header, text rows, multiples per row and key) of the verdict table; empty rows when there is none."""
    verdict = result.get("verdict")
    if not verdict:
        return [], [], []
    keys = verdict["keys"]
    header = [f"set (subsets of {verdict['k']} trials)"] + [SHORT.get(k, k) for k in keys] + ["vs baselines"]
    rows, numbers = [], []
    for entry in verdict["sets"]:
        multiples = [entry["multiple_of_floor"][k] for k in keys]
        rows.append([display_name(entry)] + [_times(v) for v in multiples] + [_against(entry, verdict["sets"])])
        numbers.append(multiples)
    return header, rows, numbers


def verdict_lines(result: dict) -> list[str]:
    """The verdict as plain-text lines for the terminal: multiples of the equal-size floor, wins vs baselines."""
    header, rows, _ = verdict_rows(result)
    if not rows:
        return []
    verdict = result["verdict"]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    where = ("disjoint halves of the reference (no other real trials)" if verdict["fallback"]
             else f"{verdict['k']}-trial subsets of the real {verdict['pool']} trials")
    return ([f"verdict: multiples of the equal-size floor ({where} vs all reference trials, "
             f"{verdict['n_resamples']} resamples); 'beats' = lower by more than both bootstrap stds",
             line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


GRADE_LIMITS = (2.0, 5.0)  # a multiple of the floor: green up to 2x, amber up to 5x, red above
GRADES = ("green", "amber", "red")


def grade(multiple: float | None) -> str:
    """The colour of a multiple of the noise floor: green (<= 2x), amber (<= 5x), red (more), n/a (NaN, none)."""
    if multiple is None or not np.isfinite(multiple):
        return "n/a"
    return "green" if multiple <= GRADE_LIMITS[0] else "amber" if multiple <= GRADE_LIMITS[1] else "red"


def worst_grade(grades: Sequence[str]) -> str:
    """The overall grade of a set: its worst known statistic ("n/a" when none is known)."""
    known = [g for g in grades if g in GRADES]
    return max(known, key=GRADES.index) if known else "n/a"


def _floor_multiples(result: dict, entry: dict) -> dict[str, float]:
    """Multiples of the protocol table's half-vs-half floor (when there is no equal-size verdict)."""
    floor = result["noise_floor"]["mean"]
    values = entry.get("mean") or {}
    full = entry.get("full") or {}
    out = {}
    for key in result["keys"]:
        value = values.get(key)
        value = full.get(key) if value is None or not np.isfinite(value) else value
        out[key] = _ratio(float("nan") if value is None else value, floor.get(key) or float("nan"))
    return out


def set_verdicts(result: dict) -> list[dict]:
    """One verdict per generated set: {"name", "display", "multiples" {key: x floor}, "grades" {key: grade},
    "overall", "floor"}: the equal-size verdict's multiples when evaluate() computed one, else the multiples of
    the protocol table's half-vs-half noise floor ("floor" says which)."""
    verdict = result.get("verdict") or {}
    by_name = {entry["name"]: entry for entry in verdict.get("sets", [])}
    out = []
    for entry in result["generated"]:
        matched = by_name.get(entry["name"])
        if matched is not None:
            multiples = {k: matched["multiple_of_floor"].get(k) for k in verdict["keys"]}
            floor = f"equal-size floor ({verdict['k']}-trial subsets)"
        else:
            multiples, floor = _floor_multiples(result, entry), "half-vs-half noise floor"
        multiples = {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in multiples.items()}
        grades = {k: grade(v) for k, v in multiples.items()}
        out.append({"name": entry["name"], "display": display_name(entry), "multiples": multiples,
                    "grades": grades, "overall": worst_grade(list(grades.values())), "floor": floor})
    return out
