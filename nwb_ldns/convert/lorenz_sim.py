"""The LDNS Lorenz benchmark, simulated from its published recipe (ldns-reference.md §1a).

Kept free of NWB so the numbers can be checked on their own: latents from the Lorenz ODE, a fixed random readout,
softplus rates and Poisson counts, and the seeded train/val/test split the reference draws.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

# dysts' Lorenz defaults, which the reference uses unchanged
SIGMA, RHO, BETA = 10.0, 28.0, 2.667
DEFAULT_IC = np.array([-9.7869288, -15.03852, 20.533978])
PERIOD = 1.5008  # dysts "period" of Lorenz; the grid has 100 points per period
FIRST_STEP = 1.801e-4  # dysts "dt", used as the solver's first step
IC_SCALE = 2.0
BURN_IN = 100
MEAN_RATE = 0.3  # b = log(mean_rate); not the realised rate (~0.14 spikes/bin)
SOFTPLUS_BETA = 2.0
SPLIT_FRACTIONS = (0.7, 0.1)  # train, val; the rest is test


@dataclass(frozen=True)
class LorenzSimulation:
    """Everything the benchmark draws, layout (trial, time, channel)."""

    latents: np.ndarray  # (trial, time, 3) float32, z-scored per trial and coordinate
    rates: np.ndarray  # (trial, time, neuron) float32, Poisson means per bin
    counts: np.ndarray  # (trial, time, neuron) int32 spike counts
    readout: np.ndarray  # (neuron, 3) float32, unit-norm rows sorted by the first column
    bias: float  # log(mean_rate) as a float32 value, same for every neuron
    initial_conditions: np.ndarray  # (trial, 3) float64
    split: np.ndarray  # (trial,) "train" | "val" | "test"


def _lorenz_rhs(_t: float, state: np.ndarray) -> np.ndarray:
    x, y, z = state
    return np.array([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])


def initial_conditions(n_trials: int, seed: int) -> np.ndarray:
    """Default IC + 2.0 * N(0, I): all offsets drawn at once, as np.random.seed(seed); np.random.randn(n, 3)."""
    return DEFAULT_IC + IC_SCALE * np.random.RandomState(seed).randn(n_trials, 3)


def integrate_trajectory(ic: np.ndarray, n_bins: int) -> np.ndarray:
    """One Lorenz trajectory on the reference grid, burn-in dropped, z-scored per coordinate: (n_bins, 3) float64."""
    n = n_bins + BURN_IN
    t_eval = np.linspace(0.0, PERIOD * n / 100, n)
    solution = solve_ivp(
        _lorenz_rhs, (t_eval[0], t_eval[-1]), np.asarray(ic, dtype=float), method="Radau",
        t_eval=t_eval, first_step=FIRST_STEP,
    )
    if not solution.success:  # pragma: no cover - Radau does not fail on Lorenz from these ICs
        raise RuntimeError(f"Lorenz integration failed: {solution.message}")
    kept = solution.y.T[BURN_IN:]
    return (kept - kept.mean(axis=0)) / kept.std(axis=0)


def _integrate_many(args: tuple[np.ndarray, int]) -> np.ndarray:
    ics, n_bins = args
    return np.stack([integrate_trajectory(ic, n_bins) for ic in ics])


def simulate_latents(ics: np.ndarray, n_bins: int, *, workers: int = 2, progress: bool = True) -> np.ndarray:
    """Integrate every IC (in `workers` processes when > 1); (trial, n_bins, 3) float32, with a progress bar."""
    from nwb_ldns.progress import bar as progress_bar

    n_trials = len(ics)
    chunk = max(1, min(50, math.ceil(n_trials / max(workers, 1) / 4)))
    batches = [(ics[i : i + chunk], n_bins) for i in range(0, n_trials, chunk)]
    out = np.empty((n_trials, n_bins, 3), dtype=np.float32)
    bar = progress_bar(total=n_trials, desc="Lorenz trajectories", unit="traj", disable=not progress)
    try:
        if workers > 1 and len(batches) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = pool.map(_integrate_many, batches)
                for i, block in enumerate(results):
                    out[i * chunk : i * chunk + len(block)] = block
                    bar.update(len(block))
        else:
            for i, batch in enumerate(batches):
                block = _integrate_many(batch)
                out[i * chunk : i * chunk + len(block)] = block
                bar.update(len(block))
    finally:
        bar.close()
    return out


def split_assignment(n_trials: int, seed: int) -> np.ndarray:
    """train/val/test labels exactly as torch.utils.data.random_split(ds, [int(.7n), int(.1n), rest], seeded gen)."""
    import torch

    order = torch.randperm(n_trials, generator=torch.Generator().manual_seed(seed)).numpy()
    n_train, n_val = (int(f * n_trials) for f in SPLIT_FRACTIONS)
    split = np.empty(n_trials, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "val"
    split[order[n_train + n_val :]] = "test"
    return split.astype(str)


def observe(latents: np.ndarray, n_neurons: int, seed: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Readout, bias, rates and Poisson counts from latents, drawing from torch's global RNG seeded with `seed`."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    readout = torch.randn(n_neurons, 3)
    readout = readout / readout.norm(dim=1, keepdim=True)
    readout = readout[torch.argsort(readout[:, 0])]
    # the reference computes log(mean_spike_count / L) in float32, with mean_spike_count = mean_rate * L
    n_bins = latents.shape[1]
    bias = torch.log(torch.tensor(MEAN_RATE * n_bins) / n_bins)
    z = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
    rates = F.softplus(torch.einsum("nj,ktj->ktn", readout, z) + bias, beta=SOFTPLUS_BETA)
    counts = torch.poisson(rates)
    return readout.numpy(), float(bias), rates.numpy(), counts.numpy().astype(np.int32)


def simulate_lorenz(
    n_trials: int = 5000, n_neurons: int = 128, n_bins: int = 256, seed: int = 42, *, workers: int = 2,
    progress: bool = True,
) -> LorenzSimulation:
    """The full benchmark: same seed, same arrays."""
    ics = initial_conditions(n_trials, seed)
    latents = simulate_latents(ics, n_bins, workers=workers, progress=progress)
    readout, bias, rates, counts = observe(latents, n_neurons, seed)
    return LorenzSimulation(
        latents=latents, rates=rates, counts=counts, readout=readout, bias=bias, initial_conditions=ics,
        split=split_assignment(n_trials, seed),
    )
