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
    """Run `nwb-ldns ARGS` in `processes` ranks; return the exit code (0 when every rank succeeded, 2 when rank 0
    refused an input or option: its one `Error:` line is shown without torchrun's own traceback)."""
    if "fit" not in args or without_processes(args) == args:
        from nwb_ldns.errors import OptionError

        raise OptionError("fit --processes relaunches the command line it was given; call it as `nwb-ldns fit ... "
                          "--processes N`, or from Python run torchrun yourself (README, Scaling out)")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    launcher = subprocess.Popen(torchrun_command(processes, args), env=env, stderr=subprocess.PIPE, text=True,
                                bufsize=1)
    refused, held = False, []
    assert launcher.stderr is not None
    for line in launcher.stderr:
        if held or _launcher_report(line):
            held.append(line)  # torchrun's account of a failed rank: shown only when no rank said why
            continue
        refused = refused or line.startswith("Error: ")
        sys.stderr.write(line)
    code = launcher.wait()
    if code and refused:
        return 2
    sys.stderr.writelines(held)
    return code


def _launcher_report(line: str) -> bool:
    """The first line of torchrun's report on a failed rank (its log line, then a traceback of the launcher)."""
    return "torch/distributed/elastic" in line or line.startswith("Traceback (most recent call last)")
