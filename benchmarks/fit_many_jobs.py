"""Many sessions, one model each (`fit --out-dir DIR --jobs J`): wall time with J = 1 and 2 on this machine;
prints figures, asserts nothing.

    XDG_CACHE_HOME=/tmp/xdg .venv/bin/python benchmarks/fit_many_jobs.py [--sessions 4] [--epochs 80]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nwb_ldns.testing import write_mock_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--jobs", default="1,2")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fit-many-"))
    paths = [work / f"m{i}.nwb" for i in range(args.sessions)]
    for seed, path in enumerate(paths):
        write_mock_session(path, n_trials=64, n_units=16, seed=seed)
    print(f"{args.sessions} mock sessions (64 trials x 32 bins x 16 units), --preset tiny --epochs {args.epochs}")
    for jobs in (int(j) for j in args.jobs.split(",")):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", *map(str, paths), "--out-dir", str(work / f"j{jobs}"),
                        "--jobs", str(jobs), "--preset", "tiny", "--epochs", str(args.epochs), "--quiet"],
                       check=True, capture_output=True)
        print(f"--jobs {jobs}: {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
