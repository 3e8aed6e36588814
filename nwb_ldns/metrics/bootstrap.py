"""The reference's table protocol: bootstrap resamples of each sample set and a real-vs-real noise floor.

ldns-reference.md section 4 item 4: with the RNG seeded (42), draw 5 index arrays choice(N, N, replace=True); each
fold of a sample set is compared with the FULL data; report mean and std (ddof 0) over folds. Noise floor row: per
fold, a random half of the data (choice(N, N//2, replace=False), drawn after the bootstrap indices) is the
reference, and the complementary positions of the bootstrapped data are the "model"; the ISI columns are still
compared with the full data. One legacy RandomState(seed) stream gives these draws in the reference's order (the
reference notebook also draws a Poisson sample from the same global stream first, so its exact indices differ).

Every resample is a trial weighting (how often each trial is drawn), so each set is summarised in one pass.
"""

from __future__ import annotations

import numpy as np

from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.metrics.headline import EXTRA_KEYS, HEADLINE_KEYS, SetStats, compare, summarise


def bootstrap_indices(n: int, n_resamples: int = 5, seed: int = 42) -> list[np.ndarray]:
    """The reference's bootstrap index arrays: RandomState(seed).choice(n, n, replace=True), n_resamples times."""
    rng = np.random.RandomState(seed)
    return [rng.choice(n, n, replace=True) for _ in range(n_resamples)]


def noise_floor_splits(n: int, n_resamples: int = 5, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per fold (reference-half indices, bootstrap indices, positions of the complementary half).

    The noise-floor "model" of fold k is data[boot_k][other_k]; with n_resamples == 0 a single fold compares a
    random half with the complementary half (no resampling).
    """
    if n < 2:
        raise SessionContentError("the real-vs-real noise floor needs at least 2 real trials")
    rng = np.random.RandomState(seed)
    folds = max(n_resamples, 1)
    boots = [rng.choice(n, n, replace=True) for _ in range(n_resamples)] or [np.arange(n)]
    out = []
    for k in range(folds):
        half = rng.choice(n, n // 2, replace=False)
        other = np.setdiff1d(np.arange(n), half)
        out.append((half, boots[k], other))
    return out


def _weights(index_arrays, n: int) -> np.ndarray:
    if not len(index_arrays):
        return np.zeros((0, n))
    return np.stack([np.bincount(idx, minlength=n) for idx in index_arrays]).astype(np.float64)


def _aggregate(full: dict | None, folds: list[dict]) -> dict:
    keys = list(folds[0])
    values = {key: [float(f[key]) for f in folds] for key in keys}
    out = {
        "mean": {key: float(np.mean(v)) for key, v in values.items()},
        "std": {key: float(np.std(v)) if len(v) > 1 else None for key, v in values.items()},
        "values": values,
    }
    if full is not None:
        out["full"] = {key: float(v) for key, v in full.items()}
    return out


# --maxval above this many times the largest population count (or MAXVAL_FLOOR) is refused: the KDE grid past
# the data holds no mass, and each grid point costs memory for every distinct count (1e9 asks for tens of GiB)
MAXVAL_FACTOR = 10
MAXVAL_FLOOR = 1000


def check_maxval(maxval: int, largest: float) -> int:
    """The given KDE grid end, or OptionError when it is far beyond the data (before the grid is allocated)."""
    limit = max(MAXVAL_FLOOR, MAXVAL_FACTOR * int(largest))
    if int(maxval) > limit:
        raise OptionError(f"--maxval {maxval} is far beyond the largest population count in the compared sets "
                          f"({int(largest)}); give at most {limit} ({MAXVAL_FACTOR} x that count, at least "
                          f"{MAXVAL_FLOOR}) or leave --maxval out to use the largest count")
    return int(maxval)


def protocol_table(real_counts, model_counts: list, bin_width: float, *, real_mask=None, model_masks=None,
                   n_resamples: int = 5, seed: int = 42, maxval: int | None = None,
                   extras: bool = True) -> dict:
    """Bootstrap statistics of every sample set vs the full real set, and the real-vs-real noise floor.

    Returns {"maxval", "keys", "noise_floor": {...}, "models": [{"full", "mean", "std", "values"}, ...]}; each
    entry's mean/std/values are dicts keyed by statistic. Set sizes may differ from the real set; a set of the
    same size as the real set uses the same bootstrap indices (as in the reference).
    """
    if n_resamples < 0:
        raise OptionError(f"--bootstrap must be >= 0, got {n_resamples}")
    model_masks = model_masks or [None] * len(model_counts)
    real_counts = np.asarray(real_counts)
    n_real = real_counts.shape[0]
    splits = noise_floor_splits(n_real, n_resamples, seed)
    real_weights = np.concatenate([
        np.ones((1, n_real)),
        _weights([half for half, _, _ in splits], n_real),
        _weights([boot[other] for _, boot, other in splits], n_real),
    ])
    real_stats = summarise(real_counts, bin_width, real_mask, real_weights)
    full_real, halves, complements = real_stats[0], real_stats[1:1 + len(splits)], real_stats[1 + len(splits):]

    model_stats: list[list[SetStats]] = []
    for counts, mask in zip(model_counts, model_masks):
        counts = np.asarray(counts)
        if counts.ndim != 3 or counts.shape[2] != real_counts.shape[2]:
            raise SessionContentError(f"a sample set has shape {counts.shape} but the real data have "
                                      f"{real_counts.shape[2]} units; evaluate samples of a model of this session")
        n = counts.shape[0]
        weights = np.concatenate([np.ones((1, n)), _weights(bootstrap_indices(n, n_resamples, seed), n)])
        model_stats.append(summarise(counts, bin_width, mask, weights))

    largest = max([full_real.max_pop] + [stats[0].max_pop for stats in model_stats])
    maxval = int(largest if maxval is None else check_maxval(maxval, largest))
    floor = [compare(c, h, maxval, isi_reference=full_real, extras=extras) for h, c in zip(halves, complements)]
    models = []
    for stats in model_stats:
        full = compare(stats[0], full_real, maxval, extras=extras)
        folds = [compare(s, full_real, maxval, extras=extras) for s in stats[1:]] or [full]
        models.append(_aggregate(full, folds))
    keys = list(HEADLINE_KEYS) + (list(EXTRA_KEYS) if extras else [])
    return {"maxval": maxval, "keys": keys, "n_resamples": n_resamples, "seed": seed,
            "noise_floor": _aggregate(None, floor), "models": models}
