"""Training step time and sampling time of the neural baselines at MC_Maze shapes (2008 trials x 140 bins x 182
units), with the reference settings (presets `lfads`: batch 256 trials, `pivae`: 32 trials = 4480 bins, `tndm`: 128 trials
with a 2-D behaviour), on CPU threads.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/baselines_speed.py [--threads 2] [--steps 5] [--models tndm]

Prints, per baseline: seconds per optimiser step (mean of --steps after one warm-up step), the implied time of one
epoch (ceil(2008 / batch) steps) and of the preset's epochs, and the seconds to sample 2008 trials.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

N_TRIALS, N_BINS, N_UNITS = 2008, 140, 182


def _session():
    from nwb_ldns.data.schema import make_session_dataset

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.05, (N_TRIALS, N_BINS, N_UNITS))
    ds = make_session_dataset(counts, 0.005, attrs={"source_sha256": "00" * 32},
                              extra_trial_vars={"trial_reach_angle": rng.uniform(0, 2 * np.pi, N_TRIALS)})
    velocity = rng.normal(size=(N_TRIALS, N_BINS, 2)).astype(np.float32)  # hand velocity (TNDM's behaviour)
    return ds.assign(behavior=(("trial", "time", "behavior_dim"), velocity)).assign_coords(behavior_dim=["x", "y"])


def bench(name: str, steps: int) -> dict[str, float]:
    """Seconds per optimiser step at the preset's batch and to sample 2008 trials, of baseline `name`."""
    from importlib import import_module

    from nwb_ldns.baselines import neural_baseline
    from nwb_ldns.baselines.trainer import describe_trials, resolve_baseline_config

    module = import_module(f"nwb_ldns.baselines.{name}")
    session = _session()
    overrides = {"condition": "reach_angle"} if name == "pivae" else None
    config = resolve_baseline_config(module.SPEC, name, overrides)
    data = describe_trials(session, np.arange(N_TRIALS), np.arange(0))
    if module.SPEC.describe is not None:
        data.update(module.SPEC.describe(session, config))
    torch.manual_seed(0)
    net = module.build(config, data)
    tensors = module.tensors(session, config)
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
    batch = config["batch_size"]
    times = []
    for step in range(steps + 1):
        rows = torch.randperm(N_TRIALS)[:batch]
        start = time.perf_counter()
        loss, _ = module.loss(net, {k: v[rows] for k, v in tensors.items()}, config, step, 8, True)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config["grad_clip"])
        optimizer.step()
        times.append(time.perf_counter() - start)
    step_s = float(np.mean(times[1:]))
    model = neural_baseline(name)(net.eval(), config, data, model_dir=None)
    start = time.perf_counter()
    model.sample(N_TRIALS, seed=0)
    sample_s = time.perf_counter() - start
    epoch_s = step_s * math.ceil(N_TRIALS / batch)
    return {"batch": batch, "step_s": step_s, "epoch_s": epoch_s, "epochs": config["epochs"],
            "train_s": epoch_s * config["epochs"], "sample_s": sample_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", default="lfads,pivae,tndm", help="comma-separated baselines to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"shapes {N_TRIALS} x {N_BINS} x {N_UNITS}, {args.threads} threads, torch {torch.__version__}")
    for name in args.models.split(","):
        r = bench(name, args.steps)
        print(f"{name}: batch {r['batch']}: {r['step_s']:.3f} s/step, {r['epoch_s']:.1f} s/epoch, "
              f"{r['epochs']} epochs ~ {r['train_s'] / 60:.0f} min; sampling {N_TRIALS} trials {r['sample_s']:.2f} s")


if __name__ == "__main__":
    main()
