"""Is there shared trial-to-trial variability for a latent model to capture? Figures per trial table and bin width.

A latent model can only beat PSTH-Poisson on correlations and population-count spread where the data have
structure beyond the trial-averaged rates. This prints, per session reading:
- corr reproducibility: Pearson r between the off-diagonal pairwise correlations of the train and the test trials
  (near 0: the pairwise correlations are sampling noise; near 1: reproducible structure);
- corr RMSE of the train trials vs the test trials, and of a 5,000-trial PSTH-Poisson sample vs the test trials
  (the lowest corr RMSE any model without correlations can reach);
- Fano factor (median over units) of per-trial spike counts, and the population-count variance per bin relative to
  PSTH-Poisson's (> 1: over-dispersed, shared fluctuations).

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/shared_variability.py ../shared/data/real/sub-4_ses-4_ecephys+image.nwb
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

READINGS = (  # (trials table, window after start_time in s) of the shared real file
    ("intervals/recognition_table", 1.5),
    ("intervals/timediscrimination_table", 2.0),
    ("intervals/encoding_table", 6.8),
)


def correlation(counts: np.ndarray) -> np.ndarray:
    from nwb_ldns.metrics.correlation import correlation_from_moments, weighted_moments

    gram, sums, n = weighted_moments(counts)
    return correlation_from_moments(gram[0], sums[0], n[0])


def figures(session, seed: int = 0) -> dict[str, float]:
    from nwb_ldns.metrics.correlation import rmse_corr

    counts, split = session["counts"].values, session["split"].values
    train, test = counts[split != "test"], counts[split == "test"]
    c_train, c_test = correlation(train), correlation(test)
    psth = train.mean(0)
    sample = np.random.default_rng(seed).poisson(np.broadcast_to(psth, (5000,) + psth.shape)).astype(np.float64)
    pairs = np.triu_indices(counts.shape[2], 1)
    totals = counts.sum(1)
    return {
        "corr_reproducibility": float(np.corrcoef(c_train[pairs], c_test[pairs])[0, 1]),
        "corr_rmse_train_vs_test": float(rmse_corr(c_train, c_test)),
        "corr_rmse_psth_vs_test": float(rmse_corr(correlation(sample), c_test)),
        "fano_median": float(np.median(totals.var(0) / np.maximum(totals.mean(0), 1e-12))),
        "pop_var_vs_psth_poisson": float(counts.sum(2).var() / sample.sum(2).var()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("session", help="the shared real file (or any file with the same trial tables)")
    parser.add_argument("--bin-widths", nargs="+", type=float, default=[0.02, 0.05, 0.1])
    args = parser.parse_args()
    from nwb_ldns.data import load_session

    print("| trials table | bin (s) | trials x bins x units | corr reproducibility | corr RMSE train vs test | "
          "corr RMSE PSTH-Poisson vs test | Fano | pop. var / PSTH-Poisson |")
    print("|---|---|---|---|---|---|---|---|")
    for table, length in READINGS:
        for width in args.bin_widths:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                session = load_session(args.session, trials_table=table, bin_width=width, align="start_time",
                                       window=(0.0, length))
            f = figures(session)
            shape = " x ".join(str(session.sizes[d]) for d in ("trial", "time", "unit"))
            print(f"| {table} | {width:g} | {shape} | {f['corr_reproducibility']:.3f} | "
                  f"{f['corr_rmse_train_vs_test']:.4f} | {f['corr_rmse_psth_vs_test']:.4f} | {f['fano_median']:.3f} | "
                  f"{f['pop_var_vs_psth_poisson']:.3f} |")


if __name__ == "__main__":
    main()
