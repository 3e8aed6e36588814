"""Training step time and sampling time of the neural baselines at MC_Maze shapes (2008 trials x 140 bins x 182
units), with the reference settings (preset `lfads`: batch 256), on CPU threads.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/baselines_speed.py [--threads 2] [--steps 5]

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
    return make_session_dataset(counts, 0.005, attrs={"source_sha256": "00" * 32})


def bench_lfads(steps: int) -> dict[str, float]:
    from nwb_ldns.baselines import lfads
    from nwb_ldns.baselines.lfads import LFADS
    from nwb_ldns.baselines.trainer import describe_trials, resolve_baseline_config

    session = _session()
    config = resolve_baseline_config(lfads.SPEC, "lfads", None)
    data = describe_trials(session, np.arange(N_TRIALS), np.arange(0))
    torch.manual_seed(0)
    net = lfads.build(config, data)
    tensors = lfads.tensors(session, config)
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
    batch = config["batch_size"]
    times = []
    for step in range(steps + 1):
        rows = torch.randperm(N_TRIALS)[:batch]
        start = time.perf_counter()
        loss, _ = lfads.loss(net, {k: v[rows] for k, v in tensors.items()}, config, step, 8, True)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config["grad_clip"])
        optimizer.step()
        times.append(time.perf_counter() - start)
    step_s = float(np.mean(times[1:]))
    model = LFADS(net.eval(), config, data, model_dir=None)
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"shapes {N_TRIALS} x {N_BINS} x {N_UNITS}, {args.threads} threads, torch {torch.__version__}")
    for name, bench in (("lfads", bench_lfads),):
        r = bench(args.steps)
        print(f"{name}: batch {r['batch']}: {r['step_s']:.3f} s/step, {r['epoch_s']:.1f} s/epoch, "
              f"{r['epochs']} epochs ~ {r['train_s'] / 60:.0f} min; sampling {N_TRIALS} trials {r['sample_s']:.2f} s")


if __name__ == "__main__":
    main()
