"""Spike-history GLM at monkey scale (2008 trials x 140 bins x 182 units, 5 ms): time per training epoch, sampling
time, and peak resident memory; prints figures, asserts nothing.

The reference fits the same GLM full-batch on a 240,960 x 182 x 22 design tensor (3.9 GB); ours streams
mini-batches of trials through a grouped causal convolution. Counts and rates are simulated (Poisson around smooth
rates with a refractory rule) since only the shapes matter here.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/spike_history.py [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from nwb_ldns.models.spike_history import HistoryConfig, fit_spike_history, sample_with_history


def monkey_like(n_trials: int, n_bins: int, n_units: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(counts uint8, rates float32), made trial by trial so the data themselves stay lean (256 MB at monkey
    scale, what a loaded session holds)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins)[:, None]
    rates = np.empty((n_trials, n_bins, n_units), np.float32)
    counts = np.empty((n_trials, n_bins, n_units), np.uint8)
    for trial in range(n_trials):
        rates[trial] = 0.04 + 0.03 * np.sin(2 * np.pi * t / n_bins + rng.uniform(0, 6.3, (1, n_units)))
        drawn = rng.poisson(rates[trial])
        drawn[1:][drawn[:-1] > 0] = 0  # a one-bin refractory period
        counts[trial] = np.minimum(drawn, 255)
    return counts, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2008)
    parser.add_argument("--bins", type=int, default=140)
    parser.add_argument("--units", type=int, default=182)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=HistoryConfig.batch_size)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    counts, rates = monkey_like(args.trials, args.bins, args.units)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = HistoryConfig(epochs=args.epochs, batch_size=args.batch_size)
    epoch_times: list[float] = []
    clock = [time.perf_counter()]

    def on_epoch(epoch: int, loss: float) -> None:
        now = time.perf_counter()
        epoch_times.append(now - clock[0])
        clock[0] = now
        print(f"epoch {epoch}: loss {loss:.5f}, {epoch_times[-1]:.2f} s")

    model, _ = fit_spike_history(counts, rates, config, on_epoch=on_epoch)
    trained_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    sampled = np.empty(rates.shape, np.uint8)  # filled in batches of 512 trials, as `sample` fills its counts
    for i in range(0, len(rates), 512):
        sampled[i:i + 512] = sample_with_history(model, rates[i:i + 512], torch.Generator().manual_seed(i))
    sample_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = -(-args.trials // args.batch_size)
    print(f"\nshape {args.trials} x {args.bins} x {args.units}, {args.threads} threads, batch {args.batch_size} trials")
    print(f"| training epoch (s, best of {len(epoch_times)}) | step (ms) | sampling {args.trials} trials (s) | "
          f"peak RSS with the data (MB) | peak after training (MB) | peak after sampling (MB) |")
    print("|---|---|---|---|---|---|")
    print(f"| {min(epoch_times):.2f} | {1e3 * min(epoch_times) / steps:.1f} | {sample_s:.2f} | {base_mb:.0f} | "
          f"{trained_mb:.0f} | {peak_mb:.0f} |")
    print(f"sampled mean count {sampled.mean():.4f} vs data {counts.mean():.4f}")


if __name__ == "__main__":
    main()
