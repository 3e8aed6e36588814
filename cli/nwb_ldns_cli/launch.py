"""`fit --processes N`: the same command under torchrun, N data-parallel processes on this machine.

Why torchrun and not our own spawning: it is the launcher the field uses (rendezvous, environment, stopping every
rank when one fails), and `torchrun ... -m nwb_ldns fit ...` on several machines runs the very same code path.
"""

from __future__ import annotations

import os
import subprocess
import sys


def without_processes(args: list[str]) -> list[str]:
    """The command line minus `--processes N` / `--processes=N` (each rank runs a plain `fit`)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--processes":
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        out.append(arg)
    return out


def torchrun_command(processes: int, args: list[str]) -> list[str]:
    """torchrun (as `python -m torch.distributed.run`, so the venv's torch is used) on one machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "nwb_ldns", *without_processes(args)]


def launch_data_parallel(processes: int, args: list[str]) -> int:
    """Run `nwb-ldns ARGS` in `processes` ranks; return the launcher's exit code (0 when every rank succeeded)."""
    if "fit" not in args or without_processes(args) == args:
        from nwb_ldns.errors import OptionError

        raise OptionError("fit --processes relaunches the command line it was given; call it as `nwb-ldns fit ... "
                          "--processes N`, or from Python run torchrun yourself (README, Scaling out)")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    return subprocess.run(torchrun_command(processes, args), env=env, check=False).returncode
