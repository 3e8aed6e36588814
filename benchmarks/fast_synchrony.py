"""At what timescale do a session's correlations live? Smoothed-trial references and the pairs that carry them.

A smooth-latent model (LDNS with strong latent penalties, LDS) can only reproduce correlations that survive
temporal smoothing. This prints, for one session reading, the correlation RMSE and population-count KL against
the held-out trials (benchmarks/real_quality.py's bootstrap protocol) of:
- PSTH-Poisson, and Poisson samples of the train trials' counts Gaussian-smoothed over time (sigma in bins): if
  smoothing by a few bins already loses most of the way to the floor, the structure is faster than that;
- the train trials themselves (about the floor);
and the unit pairs whose test correlation PSTH-Poisson misses most, with the fraction of each pair's spikes that
have a partner spike within 1 / 5 / 25 ms (zero-lag synchrony, or units split from one neuron, shows up here).

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/fast_synchrony.py ../shared/data/real/sub-4_ses-4_ecephys+image.nwb \\
        --trials-table intervals/encoding_table --align start_time --window 0 6.8 --bin-width 0.05
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_quality import compare_sets  # noqa: E402
from shared_variability import correlation  # noqa: E402


def smoothed_references(train: np.ndarray, sigmas: Sequence[float], rng: np.random.Generator
                        ) -> dict[str, np.ndarray]:
    """PSTH-Poisson, Poisson draws of the smoothed train trials (one per sigma) and the train trials."""
    from scipy.ndimage import gaussian_filter1d

    psth = train.mean(0)
    sets = {"PSTH-Poisson": rng.poisson(np.broadcast_to(psth, train.shape)).astype(np.float32)}
    for sigma in sigmas:
        sets[f"train trials smoothed, sigma {sigma:g} bins"] = rng.poisson(
            gaussian_filter1d(train, sigma, axis=1)).astype(np.float32)
    sets["train trials themselves"] = train.astype(np.float32)
    return sets


def coincidence_fractions(a: np.ndarray, b: np.ndarray, windows: Sequence[float]) -> list[float]:
    """Fraction of spikes of `a` with a spike of `b` within each window (s); both sorted spike-time arrays."""
    if len(a) == 0 or len(b) == 0:
        return [0.0 for _ in windows]
    pos = np.searchsorted(b, a)
    nearest = np.minimum(np.abs(a - b[np.clip(pos, 0, len(b) - 1)]), np.abs(a - b[np.clip(pos - 1, 0, len(b) - 1)]))
    return [float((nearest < w).mean()) for w in windows]


def unit_spike_times(path: str) -> list[np.ndarray]:
    """Every unit's spike times, in Units-table order (read-only)."""
    import h5py

    with h5py.File(path, "r") as handle:
        times, index = handle["units/spike_times"][:], handle["units/spike_times_index"][:]
    starts = np.r_[0, index[:-1]]
    return [np.sort(times[s:e]) for s, e in zip(starts, index)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("session")
    parser.add_argument("--trials-table", default=None)
    parser.add_argument("--align", default=None)
    parser.add_argument("--window", nargs=2, type=float, default=None)
    parser.add_argument("--bin-width", type=float, default=0.05)
    parser.add_argument("--sigmas", nargs="+", type=float, default=[2, 5, 10, 20])
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args(argv)
    from nwb_ldns.data import load_session

    reader = {"trials_table": args.trials_table, "align": args.align,
              "window": tuple(args.window) if args.window else None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(args.session, bin_width=args.bin_width, **{k: v for k, v in reader.items() if v})
    split, counts = session["split"].values, session["counts"].values.astype(np.float64)
    train = counts[split == "train"]
    rng = np.random.default_rng(0)
    comp = compare_sets(session, smoothed_references(train, args.sigmas, rng), "test", 5, 0)
    print("| set | KL pop. count | corr RMSE |\n|---|---|---|")
    print(f"| real train+val (floor) | {comp['floor']['kl_pop_count'][0]:.4g} | {comp['floor']['rmse_corr'][0]:.4g} |")
    for name, stats in comp["sets"].items():
        print(f"| {name} | {stats['kl_pop_count'][0]:.4g} | {stats['rmse_corr'][0]:.4g} |")

    test_corr = correlation(counts[split == "test"])
    psth = train.mean(0)
    psth_corr = correlation(rng.poisson(np.broadcast_to(psth, (2000,) + psth.shape)).astype(np.float64))
    pairs = np.triu_indices(counts.shape[2], 1)
    missed = (test_corr - psth_corr)[pairs]
    order = np.argsort(-np.abs(missed))[:args.pairs]
    print(f"\nthe {args.pairs} pairs PSTH-Poisson misses most ({(missed[order] ** 2).sum() / (missed ** 2).sum():.0%} "
          "of its squared corr error)")
    print("| units (row) | test corr | train corr | PSTH corr | spikes | partner within 1 / 5 / 25 ms |\n|---|---|---|---|---|---|")
    spikes = unit_spike_times(args.session) if session.attrs.get("source") != "counts" else None
    train_corr = correlation(train)
    for k in order:
        i, j = pairs[0][k], pairs[1][k]
        near = "-" if spikes is None else " / ".join(f"{f:.3f}" for f in coincidence_fractions(
            spikes[i], spikes[j], (0.001, 0.005, 0.025)))
        n = "-" if spikes is None else f"{len(spikes[i])}, {len(spikes[j])}"
        print(f"| {i}, {j} | {test_corr[i, j]:.3f} | {train_corr[i, j]:.3f} | {psth_corr[i, j]:.3f} | {n} | {near} |")


if __name__ == "__main__":
    main()
