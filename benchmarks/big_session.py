"""Peak memory and wall time of reading and fitting a big session (issue 11: 2,000 units x 2 h, ~100 M spikes).

    .venv/bin/python benchmarks/big_session.py [--dir /tmp] [--units 2000] [--hours 2] [--rate 7] [--trial 1.0]

Writes (once; reused when present) a generated Neuropixels-like NWB session under --dir: `--units` units firing
Poisson spikes at a gamma-distributed rate of mean `--rate` Hz (times on the 30 kHz sample grid), one trials table
of back-to-back `--trial`-second trials, no split column (the reader draws its seeded 70/10/20 split). The Units
table's spike_times column is written through an hdmf chunk iterator, unit after unit, so the writer never holds
more than one unit's spikes. Then, each in a fresh process (peak RSS from wait4, wall time from the parent):

1. `load_session` with an empty counts cache (reads, checks and bins the spikes; builds the on-disk cache when the
   counts exceed the memory budget, see nwb_ldns/data/counts_cache.py);
2. `load_session` again (reuses the cache);
3. `nwb-ldns fit FILE --preset tiny --epochs 1 --quiet` (one epoch of each stage, the held-out check).

NWB_LDNS_COUNTS_BUDGET, NWB_LDNS_CACHE_DIR and NWB_LDNS_BINNING_CHUNK pass through to the measured processes; the
cache goes to --dir/nwb-ldns-counts-cache unless NWB_LDNS_CACHE_DIR is set. --keep leaves the file and the cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 30_000.0  # Neuropixels AP band: spike times are multiples of 1/30 kHz


def unit_spikes(seed: int, unit: int, rate: float, duration: float) -> np.ndarray:
    """Sorted Poisson spike times of one unit (its own random stream, so any unit can be regenerated alone)."""
    rng = np.random.default_rng([seed, unit])
    n = rng.poisson(rate * duration)
    return np.sort(np.round(rng.uniform(0.0, duration, n) * SAMPLE_RATE) / SAMPLE_RATE)


def write_session(path: Path, n_units: int, duration: float, mean_rate: float, trial: float, seed: int) -> int:
    """Write the session atomically (temp name, then rename); return the number of spikes."""
    from hdmf.common import VectorData, VectorIndex
    from hdmf.data_utils import AbstractDataChunkIterator, DataChunk
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject
    from pynwb.misc import Units
    from datetime import datetime, timezone

    rates = np.random.default_rng(seed).gamma(2.0, mean_rate / 2.0, n_units)
    # spikes per unit without their times: the first draw of each unit's stream, as in unit_spikes
    counts = np.array([np.random.default_rng([seed, u]).poisson(rates[u] * duration) for u in range(n_units)])
    ends = np.cumsum(counts)
    chunk = int(min(1 << 18, max(int(ends[-1]), 1)))  # HDF5 chunks of 2 MiB of spike times

    class Spikes(AbstractDataChunkIterator):
        """The spike_times column, one unit per chunk handed to HDF5."""

        def __init__(self) -> None:
            self.unit = 0

        def __iter__(self):
            return self

        def __next__(self) -> DataChunk:
            if self.unit >= n_units:
                raise StopIteration
            u, self.unit = self.unit, self.unit + 1
            times = unit_spikes(seed, u, rates[u], duration)
            begin = int(ends[u] - len(times))
            return DataChunk(data=times, selection=np.s_[begin:int(ends[u])])

        def recommended_chunk_shape(self):
            return (chunk,)

        def recommended_data_shape(self):
            return (int(ends[-1]),)

        @property
        def dtype(self):
            return np.dtype(np.float64)

        @property
        def maxshape(self):
            return (int(ends[-1]),)

    from hdmf.backends.hdf5.h5_utils import H5DataIO

    nwb = NWBFile(session_description=f"Generated Neuropixels-like session: {n_units} units, {duration:g} s, "
                  f"Poisson spikes at {mean_rate:g} Hz on average (benchmarks/big_session.py)",
                  identifier=f"big-session-{n_units}-{duration:g}-{seed}",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
                  subject=Subject(subject_id="bench01", species="Mus musculus", sex="U", age="P90D"))
    spike_times = VectorData(name="spike_times", description="spike times (s)",
                             data=H5DataIO(Spikes(), chunks=(chunk,)))
    index = VectorIndex(name="spike_times_index", data=ends.astype(np.int64), target=spike_times)
    nwb.units = Units(name="units", id=np.arange(n_units), columns=[index, spike_times],  # index first: hdmf drops iterator columns early
                      description="generated units")
    n_trials = int(duration // trial)
    starts = np.arange(n_trials) * trial
    for start in starts:
        nwb.add_trial(start_time=float(start), stop_time=float(start + trial))
    partial = path.with_name(".partial-" + path.name)
    with NWBHDF5IO(str(partial), "w") as io:
        io.write(nwb)
    partial.rename(path)
    return int(ends[-1])


RUNNER = """
import os, resource, sys, time
import torch
torch.set_num_threads(2)
from nwb_ldns.data import load_session
from nwb_ldns.data.counts_cache import is_lazy, stored_dtype
started = time.time()
ds = load_session(sys.argv[1])
print(f"trials x bins x units = {ds.sizes['trial']} x {ds.sizes['time']} x {ds.sizes['unit']}; "
      f"counts {'on disk (' + str(stored_dtype(ds['counts'])) + ')' if is_lazy(ds['counts']) else 'in memory'}; "
      f"{time.time() - started:.1f} s", flush=True)
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(peak RSS in GiB of the process and its children, wall seconds, exit status, last output lines)."""
    started = time.time()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = "\n".join(out.read().strip().splitlines()[-6:])
    return usage.ru_maxrss / 2**20, time.time() - started, process.returncode, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the session (and cache) are kept")
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=7.0, help="mean firing rate (Hz)")
    parser.add_argument("--trial", type=float, default=1.0, help="trial length (s), back to back")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-args", default="--preset tiny --epochs 1",
                        help="options of the measured `nwb-ldns fit` (default: %(default)s)")
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--fit-only", action="store_true", help="measure only the fit, reusing the counts cache")
    parser.add_argument("--keep", action="store_true", help="keep the session file and the counts cache")
    args = parser.parse_args()

    duration = args.hours * 3600.0
    path = args.dir / f"big_session_{args.units}u_{duration:g}s_{args.rate:g}hz_seed{args.seed}.nwb"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    env.setdefault("XDG_CACHE_HOME", str(args.dir / "xdg"))
    env.setdefault("NWB_LDNS_CACHE_DIR", str(args.dir / "nwb-ldns-counts-cache"))
    cache = Path(env["NWB_LDNS_CACHE_DIR"])
    print(f"disk: {shutil.disk_usage(args.dir).free / 2**30:.1f} GiB free under {args.dir}", flush=True)
    if not path.exists():
        started = time.time()
        n_spikes = write_session(path, args.units, duration, args.rate, args.trial, args.seed)
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB, {n_spikes:,} spikes) in "
              f"{time.time() - started:.0f} s", flush=True)
    else:
        print(f"reusing {path} ({path.stat().st_size / 2**30:.2f} GiB)", flush=True)
    if not args.fit_only:
        shutil.rmtree(cache, ignore_errors=True)
    python = str(ROOT / ".venv" / "bin" / "python")
    rows = []
    for name, command in (() if args.fit_only else
                          (("load_session (cold cache)", [python, "-c", RUNNER, str(path)]),
                           ("load_session (cache reused)", [python, "-c", RUNNER, str(path)]))):
        rows.append((name, *measure(command, env)))
        print(rows[-1][-1], flush=True)
    if not args.skip_fit:
        out = Path(tempfile.mkdtemp(prefix="big-session-fit-", dir=args.dir)) / "model.ldns"
        command = [python, "-m", "nwb_ldns", "fit", str(path), "--out", str(out), "--quiet",
                   *args.fit_args.split()]
        rows.append((f"fit {args.fit_args}", *measure(command, env)))
        print(rows[-1][-1], flush=True)
        shutil.rmtree(out.parent, ignore_errors=True)
    cache_size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) if cache.exists() else 0
    print(f"\nsession: {args.units} units x {duration:g} s, {path.stat().st_size / 2**30:.2f} GiB; counts cache "
          f"{cache_size / 2**30:.2f} GiB; budget {os.environ.get('NWB_LDNS_COUNTS_BUDGET', 'default (half of available)')}")
    print(f"{'step':<34} {'peak RSS (GiB)':>15} {'wall (s)':>9} {'exit':>5}")
    for name, rss, wall, status, _ in rows:
        print(f"{name:<34} {rss:>15.2f} {wall:>9.1f} {status:>5}")
    if not args.keep:
        shutil.rmtree(cache, ignore_errors=True)
        path.unlink(missing_ok=True)
    return max(status for _, _, _, status, _ in rows)


if __name__ == "__main__":
    sys.exit(main())
