"""How long a fit takes on this kind of machine, before it starts: a cost model per optimiser step.

Why: the `auto` preset budgets training in seconds (a laptop user waits minutes, not hours), `fit` prints the
estimate at the start, and `inspect` prints it for its suggested options. The model is
    seconds per step = STEP_OVERHEAD_S + SECONDS_PER_WORK * batch * bins * hidden * (hidden + 64) * max(n_blocks, 1)
(the S4 blocks' MLPs and FFT convolutions dominate), calibrated with benchmarks/real_quality.py runs on the
2-core CI machine with torch 2.13 (docs/results.md): autoencoder and denoiser steps agree with it within ~30%.
On a GPU the estimate is an upper bound.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

STEP_OVERHEAD_S = 0.004
SECONDS_PER_WORK = 3.0e-10


def step_seconds(batch: int, bins: int, hidden: int, n_blocks: int) -> float:
    """Estimated seconds of one optimiser step (forward + backward + update) on 2 CPU cores."""
    work = float(batch) * bins * hidden * (hidden + 64) * max(int(n_blocks), 1)
    return STEP_OVERHEAD_S + SECONDS_PER_WORK * work


def stage_steps(n_train: int, batch: int, epochs: int) -> int:
    return math.ceil(n_train / batch) * int(epochs)


def check_sampling_seconds(config: Mapping[str, Any], n_bins: int, n_samples: int = 128) -> float:
    """Fit's held-out check samples with DDPM over every step: one denoiser forward (~1/3 of a step) per step."""
    cfg = config["diffusion"]
    return int(cfg["num_steps"]) * step_seconds(n_samples, n_bins, cfg["hidden"], cfg["n_blocks"]) / 3.0


def estimate_fit_seconds(config: Mapping[str, Any], n_train: int, n_bins: int) -> dict[str, float]:
    """{"autoencoder", "diffusion", "total"} upper-bound seconds (early stopping usually ends sooner)."""
    out = {}
    for stage in ("autoencoder", "diffusion"):
        cfg = config[stage]
        batch = min(int(cfg["batch_size"]), n_train)
        out[stage] = stage_steps(n_train, batch, cfg["epochs"]) * step_seconds(batch, n_bins, cfg["hidden"],
                                                                                 cfg["n_blocks"])
    out["check"] = check_sampling_seconds(config, n_bins)
    out["total"] = out["autoencoder"] + out["diffusion"] + out["check"] + 10.0  # + encoding and file writes
    return out


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
