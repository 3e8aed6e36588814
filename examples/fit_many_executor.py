"""Fit one model per session with an executor you already have: the Python entry point behind `fit --out-dir`.

    python examples/fit_many_executor.py a.nwb b.nwb c.nwb --out-dir models --workers 2

`nwb_ldns.batch.fit_sessions(paths, out_dir, executor=...)` accepts any `concurrent.futures.Executor`: each session
is one task (a picklable top-level function taking path strings and dicts) that reads the session, fits its model
into out_dir/<session stem>.ldns and returns a small `SessionOutcome`. A failing session is an outcome with its
error, never an exception that stops the others. Here the executor is a local process pool; on a cluster, pass the
engine you run anyway (the tasks need nwb-ldns installed on the workers and the paths visible to them):

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")             # or LocalCluster(), dask-jobqueue's SLURMCluster(...)
    outcomes = fit_sessions(paths, "/shared/models", executor=client.get_executor(), fit_options={...})

`mpi4py.futures.MPIPoolExecutor()` is an Executor too. With a caller's executor, progress shows each session when
it finishes, and the executor decides how many run at once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

from nwb_ldns.batch import exit_code, fit_sessions, summary_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sessions", nargs="+", help="NWB files (or URLs), one model each")
    parser.add_argument("--out-dir", required=True, help="folder for the <session stem>.ldns model directories")
    parser.add_argument("--workers", type=int, default=2, help="sessions fitted at once")
    parser.add_argument("--preset", default=None, help="fit preset (default auto)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of both stages (default: the preset's)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {}
    if args.epochs is not None:
        overrides.update({"autoencoder.epochs": args.epochs, "diffusion.epochs": args.epochs})
    if args.seed is not None:
        overrides["seed"] = args.seed
    # spawn, not fork: a forked torch process can deadlock in its thread pools
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as executor:
        outcomes = fit_sessions(args.sessions, args.out_dir, executor=executor,
                                fit_options={"preset": args.preset, "overrides": overrides},
                                torch_threads=max(1, (multiprocessing.cpu_count() or 1) // args.workers))
    print(summary_table(outcomes))
    return exit_code(outcomes)


if __name__ == "__main__":
    sys.exit(main())
