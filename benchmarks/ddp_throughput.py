"""Data-parallel training throughput: trials per second of each stage with 1 and 2 processes (fit --processes),
on this machine's cores; prints figures, asserts nothing.

The time of one epoch is the gap between two consecutive epoch records of training_log.jsonl (no start-up, no
validation, no checkpoint in it). One process uses every core as torch threads; N processes use cores/N each.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/ddp_throughput.py [--trials 600] [--preset lorenz]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def epoch_seconds(model_dir: Path, stage: str) -> tuple[float, int]:
    """(seconds of the last training epoch of `stage`, train trials) from the run's log."""
    records = [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text().splitlines() if line]
    epochs = [r for r in records if r.get("stage") == stage and "train_loss" in r]
    start = next(r for r in records if r.get("event") == "start")
    return epochs[-1]["elapsed_s"] - epochs[-2]["elapsed_s"], int(start["n_train"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600, help="Lorenz trials in the session (70%% train)")
    parser.add_argument("--preset", default="lorenz")
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ddp-bench-"))
    session = work / "lorenz.nwb"
    subprocess.run([sys.executable, "-m", "nwb_ldns", "convert", "lorenz", str(session), "--trials", str(args.trials)],
                   check=True, capture_output=True)
    settings = ["--set", "autoencoder.val_every=1000", "--set", "diffusion.val_every=0",
                "--set", "autoencoder.checkpoint_every=1000", "--set", "diffusion.checkpoint_every=1000",
                "--set", "autoencoder.epochs=3", "--set", "diffusion.epochs=3", "--set", "autoencoder.patience=0"]
    print(f"{'processes':>9} {'threads each':>12} {'AE trials/s':>12} {'diffusion trials/s':>19} {'fit wall s':>10}")
    for processes in (int(p) for p in args.processes.split(",")):
        out = work / f"p{processes}.ldns"
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", str(session), "--preset", args.preset,
                               "--out", str(out), "--quiet", "--processes", str(processes), *settings],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"fit --processes {processes} failed:\n{done.stderr[-2000:]}")
        wall = time.perf_counter() - began
        ae, n_train = epoch_seconds(out, "autoencoder")
        dn, _ = epoch_seconds(out, "diffusion")
        print(f"{processes:>9} {max(1, (os.cpu_count() or 1) // processes):>12} {n_train / ae:>12.1f} "
              f"{n_train / dn:>19.1f} {wall:>10.1f}")
    print(f"session: Lorenz, {args.trials} trials x 256 bins x 128 units; preset {args.preset}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
