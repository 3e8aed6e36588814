"""Does the model copy its training trials? Nearest-training-trial distances of generated vs held-out trials.

A model that memorises produces trials much closer to some training trial than fresh real trials are. For each
generated trial we take the Euclidean distance (on Gaussian-smoothed counts, sampled every `std` bins) to its
nearest training trial, and compare the distribution with the same distance for held-out real trials (or, with
no held-out trials, each training trial's nearest *other* training trial). Exact copies are counted on raw counts.
"""

from __future__ import annotations

import numpy as np

from nwb_ldns.errors import SessionContentError
from nwb_ldns.metrics._arrays import as_counts, blas_threads
from nwb_ldns.metrics.smoothing import smooth_counts


def trial_features(counts, std_bins: float = 2.0, mask=None, n_bins: int | None = None) -> np.ndarray:
    """float64[trial, features]: smoothed counts of the first n_bins bins, every max(1, int(std)) bins."""
    counts, mask = as_counts(counts, mask)
    if n_bins is not None:
        counts = counts[:, :n_bins]
    smooth = smooth_counts(counts, std_bins)
    stride = max(1, int(std_bins))
    return smooth[:, ::stride, :].reshape(smooth.shape[0], -1)


def nearest_distances(queries, references, *, exclude_self: bool = False, chunk: int = 256) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row (self-matches excluded if asked)."""
    queries = np.asarray(queries, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    ref_sq = (references**2).sum(axis=1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        with blas_threads(1):
            d2 = (q**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * q @ references.T
        if exclude_self:
            rows = np.arange(len(q))
            d2[rows, start + rows] = np.inf
        out[start:start + len(q)] = np.sqrt(np.clip(d2.min(axis=1), 0.0, None))
    return out


def _exact_copies(train, generated) -> int:
    seen = {np.ascontiguousarray(t).tobytes() for t in np.rint(train).astype(np.int32)}
    return int(sum(np.ascontiguousarray(g).tobytes() in seen for g in np.rint(generated).astype(np.int32)))


def memorisation_check(train, generated, heldout=None, *, std_bins: float | None = None, train_mask=None,
                       generated_mask=None, heldout_mask=None) -> dict:
    """Nearest-training-trial distances of generated and held-out trials, plus a one-number summary.

    Returns {"generated": distances, "heldout": distances, "reference": "heldout"|"train-loo",
    "median_generated", "median_heldout", "frac_closer_than_heldout_p5", "frac_farther_than_heldout_p95",
    "exact_copies"}. A frac closer well above 0.05 means generated trials sit closer to training trials than fresh
    data do (memorisation); a frac farther well above 0.05, that they sit farther (a poor fit: see
    `memorisation_verdict`). std_bins (the
    smoothing std and sampling step of the features) defaults to max(2, n_bins / 20): about 20 points per trial.
    """
    train, train_mask = as_counts(train, train_mask, name="training counts")
    generated, generated_mask = as_counts(generated, generated_mask, name="generated counts")
    if train.shape[2] != generated.shape[2]:
        raise SessionContentError("memorisation check needs the same units in training and generated trials")
    n_bins = min(train.shape[1], generated.shape[1])
    if heldout is not None:
        heldout, heldout_mask = as_counts(heldout, heldout_mask, name="held-out counts")
        n_bins = min(n_bins, heldout.shape[1])
    std_bins = max(2.0, n_bins / 20.0) if std_bins is None else float(std_bins)
    train_f = trial_features(train, std_bins, n_bins=n_bins)
    gen_d = nearest_distances(trial_features(generated, std_bins, n_bins=n_bins), train_f)
    if heldout is not None and len(heldout) > 0:
        ref_d, reference = nearest_distances(trial_features(heldout, std_bins, n_bins=n_bins), train_f), "heldout"
    elif len(train) > 1:
        ref_d, reference = nearest_distances(train_f, train_f, exclude_self=True), "train-loo"
    else:
        raise SessionContentError("memorisation check needs held-out trials or at least 2 training trials")
    p5, p95 = (float(v) for v in np.percentile(ref_d, [5, 95]))
    same_shape = train.shape[1:] == generated.shape[1:]
    return {
        "generated": gen_d,
        "heldout": ref_d,
        "reference": reference,
        "median_generated": float(np.median(gen_d)),
        "median_heldout": float(np.median(ref_d)),
        "frac_closer_than_heldout_p5": float(np.mean(gen_d < p5)),
        "frac_farther_than_heldout_p95": float(np.mean(gen_d > p95)),
        "exact_copies": _exact_copies(train, generated) if same_shape else 0,
    }


EXPECTED_TAIL = 0.05  # share of reference trials below their 5th / above their 95th percentile


def tail_limit(n_generated: int) -> float:
    """Largest tail share that sampling noise explains: 5 % plus two binomial stds, at least 15 %."""
    n = max(int(n_generated), 1)
    return max(0.15, EXPECTED_TAIL + 2.0 * float(np.sqrt(EXPECTED_TAIL * (1 - EXPECTED_TAIL) / n)))


def memorisation_verdict(check: dict, n_generated: int) -> tuple[str, str]:
    """(kind, sentence) for one set: "copying", "poor fit", "copying and poor fit" or "ok".

    Why both ways: a model that copies puts generated trials closer to a training trial than held-out real trials
    are; a model that fits badly puts them farther. Either tail above `tail_limit` (or any exact copy) names it.
    """
    closer = float(check.get("frac_closer_than_heldout_p5") or 0.0)
    farther = check.get("frac_farther_than_heldout_p95")
    copies = int(check.get("exact_copies") or 0)
    limit = tail_limit(n_generated)
    copying = copies > 0 or closer > limit
    poor = farther is not None and float(farther) > limit
    ref = "held-out real trials" if check.get("reference") == "heldout" else "training trials (leave-one-out)"
    parts = []
    if copying:
        parts.append(f"copying: {closer:.0%} of generated trials are closer to a training trial than 95 % of "
                     f"{ref}" + (f", {copies} exact copies" if copies else ""))
    if poor:
        parts.append(f"poor fit: {float(farther):.0%} of generated trials are farther from every training trial "
                     f"than 95 % of {ref}")
    if not parts:
        more = "" if farther is None else f", {float(farther):.0%} farther than their 95th"
        return "ok", (f"no copying and no poor fit: {closer:.0%} of generated trials closer than the 5th percentile "
                      f"of {ref}{more} (up to {limit:.0%} is sampling noise)")
    kind = "copying and poor fit" if copying and poor else "copying" if copying else "poor fit"
    return kind, "; ".join(parts) + f" (up to {limit:.0%} is sampling noise)"
