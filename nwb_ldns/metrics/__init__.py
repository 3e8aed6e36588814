"""The paper's statistics, vectorised: arrays are counts[trial, time, unit] (+ optional mask[trial, time]).

See docs/evaluation.md for definitions and the exact reference conventions each function keeps.
"""

from nwb_ldns.metrics._arrays import rmse_nan
from nwb_ldns.metrics.agreement import AGREEMENT_KEYS, statistic_agreement
from nwb_ldns.metrics.bootstrap import bootstrap_indices, noise_floor_splits, protocol_table
from nwb_ldns.metrics.correlation import correlation_matrix, lower_triangle, rmse_corr, rmse_corr_pairs
from nwb_ldns.metrics.decoding import RidgeDecoder, decoding_r2, r2_score
from nwb_ldns.metrics.evaluate import evaluate, format_table
from nwb_ldns.metrics.headline import HEADLINE_KEYS, headline_statistics, summarise
from nwb_ldns.metrics.isi import isi_statistics, rmse_mean_isi, rmse_std_isi, spike_times
from nwb_ldns.metrics.memorisation import memorisation_check
from nwb_ldns.metrics.population import (
    kde_from_histogram,
    kl_divergence,
    kl_pop_count,
    kl_pop_count_hist,
    population_counts,
)
from nwb_ldns.metrics.rates import firing_rates, psth
from nwb_ldns.metrics.smoothing import gaussian_window, smooth_counts
from nwb_ldns.metrics.spectral import PCA, power_spectrum, smoothed_pcs
from nwb_ldns.metrics.temporal import neuron_groups, temporal_correlations
from nwb_ldns.metrics.verdict import VERDICT_KEYS, equal_size_verdict, set_label, verdict_lines

__all__ = [
    "AGREEMENT_KEYS",
    "statistic_agreement",
    "HEADLINE_KEYS",
    "PCA",
    "RidgeDecoder",
    "bootstrap_indices",
    "correlation_matrix",
    "decoding_r2",
    "evaluate",
    "firing_rates",
    "format_table",
    "gaussian_window",
    "headline_statistics",
    "isi_statistics",
    "kde_from_histogram",
    "kl_divergence",
    "kl_pop_count",
    "kl_pop_count_hist",
    "lower_triangle",
    "memorisation_check",
    "neuron_groups",
    "noise_floor_splits",
    "population_counts",
    "power_spectrum",
    "protocol_table",
    "psth",
    "r2_score",
    "rmse_corr",
    "rmse_corr_pairs",
    "rmse_mean_isi",
    "rmse_nan",
    "rmse_std_isi",
    "smooth_counts",
    "smoothed_pcs",
    "spike_times",
    "summarise",
    "temporal_correlations",
    "VERDICT_KEYS",
    "equal_size_verdict",
    "set_label",
    "verdict_lines",
]
