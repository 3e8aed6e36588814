"""Pearson agreement between data and model statistics: the scatter checks the LDNS authors report for Lorenz.

The authors quote Pearson r between data and samples for per-neuron mean ISI (0.9969), std ISI (0.9905), the
correlation matrices (0.9988; lower triangle flattened with the zeroed upper triangle and diagonal, which inflates
r) and the population-count KDE densities (0.9988). We report those conventions and, beside them, r over the
distinct pairs only, which is the honest version of the correlation-matrix check.
"""

from __future__ import annotations

import numpy as np

from nwb_ldns.metrics.correlation import correlation_matrix, lower_triangle
from nwb_ldns.metrics.isi import isi_statistics
from nwb_ldns.metrics.population import _hist, default_maxval, kde_from_histogram

AGREEMENT_KEYS = ("r_mean_isi", "r_std_isi", "r_corr_matrix", "r_corr_pairs", "r_pop_count_density")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def agreement_statistics(counts, bin_width: float, mask=None) -> dict[str, np.ndarray]:
    """The per-set statistics the agreement compares: per-neuron ISI mean/std, correlation matrix, count histogram.

    Computed once per set, so a real set compared with several generated sets is summarised only once.
    """
    mean_isi, std_isi = isi_statistics(counts, bin_width, mask)
    return {"mean_isi": mean_isi, "std_isi": std_isi, "corr": correlation_matrix(counts, mask),
            "hist": _hist(counts, mask)}


def agreement_between(real: dict[str, np.ndarray], model: dict[str, np.ndarray], maxval: int) -> dict[str, float]:
    """Pearson r between two sets' `agreement_statistics`; `maxval` ends the population-count KDE grid."""
    pairs = np.tril_indices(real["corr"].shape[0], k=-1)
    return {
        "r_mean_isi": _pearson(real["mean_isi"], model["mean_isi"]),
        "r_std_isi": _pearson(real["std_isi"], model["std_isi"]),
        "r_corr_matrix": _pearson(np.nan_to_num(lower_triangle(real["corr"])),
                                  np.nan_to_num(lower_triangle(model["corr"]))),
        "r_corr_pairs": _pearson(real["corr"][pairs], model["corr"][pairs]),
        "r_pop_count_density": _pearson(kde_from_histogram(real["hist"], maxval),
                                        kde_from_histogram(model["hist"], maxval)),
    }


def statistic_agreement(real, model, bin_width: float, *, real_mask=None, model_mask=None,
                        maxval: int | None = None) -> dict[str, float]:
    """Pearson r between the data's and the model's per-neuron ISI statistics, correlations and count density."""
    if maxval is None:
        maxval = default_maxval(real, model, masks=[real_mask, model_mask])
    return agreement_between(agreement_statistics(real, bin_width, real_mask),
                             agreement_statistics(model, bin_width, model_mask), maxval)
