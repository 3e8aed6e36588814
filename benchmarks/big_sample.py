"""Peak memory of `nwb-ldns sample --n 100000` on the Lorenz model (issue 11: must stay under 2 GB).

Trains the Lorenz model as `make demo` does (convert lorenz --trials 500, fit --preset tiny), or reuses it from
--cache, then runs `nwb-ldns sample MODEL --n N --sampler ddim --steps S` in a fresh process for each --n and
prints its peak RSS (the child's ru_maxrss), wall time and output size; the output is deleted afterwards.
The sampler settings keep 100,000 trials within ~10 minutes on 2 cores (ddim with few steps: the denoiser runs
once per step). Needs free disk beside --out-dir for the spill and the file (~36 GB for 100,000 Lorenz trials).

    python benchmarks/big_sample.py --cache /tmp/bigs --n 10000 100000 --steps 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "nwb_ldns"]


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(CLI + args, check=True, env=env, stdout=subprocess.DEVNULL)


def lorenz_model(cache: Path, env: dict[str, str]) -> Path:
    """The demo's Lorenz model under `cache` (trained once, reused afterwards)."""
    model = cache / "lorenz.ldns"
    if (model / "config.json").exists():
        return model
    cache.mkdir(parents=True, exist_ok=True)
    _run(["convert", "lorenz", str(cache / "lorenz.nwb"), "--trials", "500", "--overwrite", "--no-progress"], env)
    _run(["fit", str(cache / "lorenz.nwb"), "--preset", "tiny", "--out", str(model), "--overwrite", "--quiet"], env)
    return model


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(model: Path, n: int, out: Path, sampler_args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Peak RSS (GiB), wall time (s) and output size (GiB) of one `sample` run in a fresh process."""
    command = CLI + ["sample", str(model), "--n", str(n), *sampler_args, "--out", str(out), "--quiet"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    message = process.stdout.read().strip() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sample --n {n} failed: {message}")
    size = _size(out)
    shutil.rmtree(out) if out.is_dir() else out.unlink()
    return {"n": n, "peak_rss_gib": usage.ru_maxrss * 1024 / 2**30, "wall_s": wall, "size_gib": size / 2**30,
            "message": message}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nwb-ldns-big-sample",
                        help="where the Lorenz model is trained once and reused")
    parser.add_argument("--out-dir", type=Path, default=None, help="folder for the outputs (default: --cache)")
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=5, help="DDIM steps")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the sample process")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    model = lorenz_model(args.cache, env)
    out_dir = args.out_dir or args.cache
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_dir).free / 2**30
    sampler = ["--sampler", "ddim", "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    print(f"model {model}; settings {' '.join(sampler)}; {args.threads} threads; {free:.0f} GiB free in {out_dir}")
    print(f"{'trials':>8} {'peak RSS (GiB)':>15} {'wall (s)':>9} {'s / 1000 trials':>16} {'output (GiB)':>13}")
    for n in args.n:
        row = measure(model, n, out_dir / f"big-{n}.nwb", sampler, env)
        print(f"{n:>8,} {row['peak_rss_gib']:>15.2f} {row['wall_s']:>9.0f} {row['wall_s'] / n * 1000:>16.2f} "
              f"{row['size_gib']:>13.2f}   ({row['message']})", flush=True)
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB peak RSS)")


if __name__ == "__main__":
    main()
