"""Real processes for the SIGKILL tests: start an `nwb-ldns` command, reach a chosen point, SIGKILL it.

Two ways to reach the point:

- exact: the child runs `python kill_helpers.py POINT ARGS...`, which patches one function of the training code
  to stop the process (SIGSTOP) at POINT (after an epoch's checkpoint, after a log record or a model file, in the
  middle of a checkpoint write, at the start of the held-out check); the parent waits for the stop and sends
  SIGKILL. The kill lands there whatever the machine's load, and what is on disk is what a kill at that instant
  leaves (a stopped process writes nothing more, and SIGKILL runs no cleanup).
- by observation: the plain command runs, and the parent polls the file system (a `.partial` appearing, a first
  checkpoint plus a delay) and sends SIGKILL.

Torch runs one thread in every child (OMP/MKL variables), so results are bit-identical to a one-thread run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

NWB_LDNS = str(Path(sys.executable).with_name("nwb-ldns"))
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


def start(args: list[Any], log: Path, point: dict[str, Any] | None = None) -> subprocess.Popen:
    """Start `nwb-ldns ARGS...` (stopping itself at `point` if given); stdout and stderr go to `log`."""
    command = [NWB_LDNS] if point is None else [sys.executable, __file__, json.dumps(point)]
    env = dict(os.environ, **CHILD_ENV)
    with open(log, "wb") as sink:
        return subprocess.Popen([*command, *map(str, args)], stdout=sink, stderr=subprocess.STDOUT, env=env)


def _exited(process: subprocess.Popen, log: Path, what: str) -> AssertionError:
    return AssertionError(f"the process exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}")


def kill_when_stopped(process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Wait until the child stops itself at its point, then SIGKILL it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(process.pid, os.WUNTRACED | os.WNOHANG)
        if pid and os.WIFSTOPPED(status):
            _sigkill(process)
            return
        if pid:  # it exited: it never reached the point
            process.returncode = os.waitstatus_to_exitcode(status)
            raise _exited(process, log, "reaching its kill point")
        time.sleep(0.01)
    _sigkill(process)
    raise AssertionError(f"the process did not reach its kill point in {timeout} s:\n{log.read_text()[-3000:]}")


def kill_when(process: subprocess.Popen, log: Path, condition: Callable[[], bool], delay: float = 0.0,
              timeout: float = 180) -> bool:
    """Poll `condition` as fast as possible; `delay` seconds after it holds, SIGKILL the process.

    Returns True when it was killed, False when it had finished successfully first (the kill came too late, or
    the condition held only between two polls); a failed command is an AssertionError.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            break
        if time.monotonic() > deadline:
            _sigkill(process)
            raise AssertionError(f"the kill condition did not hold in {timeout} s:\n{log.read_text()[-3000:]}")
    if delay and process.poll() is None:
        time.sleep(delay)
    if process.poll() is not None:
        if process.returncode != 0:
            raise _exited(process, log, "the kill")
        return False
    _sigkill(process)
    return True


def kill_all(processes: list[subprocess.Popen]) -> None:
    """SIGKILL whichever of our processes still runs or sits stopped (after a failed test)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)


def _sigkill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


# --- the child: stop this process at a point, then run the CLI ---------------------------------------------------

def _stop() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)  # the parent kills us here


def _after(owner: Any, name: str, matches: Callable[..., bool]) -> None:
    """Wrap owner.name: run it, then stop if `matches(*args)`."""
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if matches(*args, **kwargs):
            _stop()
        return result
    setattr(owner, name, wrapped)


def install_stop(point: dict[str, Any]) -> None:
    """Patch the training code so this process stops itself at `point` (see the module docstring)."""
    import importlib

    common, fit, state = (importlib.import_module(f"nwb_ldns.training.{name}") for name in ("common", "fit", "state"))
    at = point["at"]
    if at == "epoch":  # after epoch k of a stage, its checkpoint and log record written
        _after(common.Run, "epoch_done", lambda run, stage, epoch: (stage, epoch) == (point["stage"], point["epoch"]))
    elif at == "log":  # right after a log record (e.g. the autoencoder's "done", before its weights)
        _after(common.Run, "log", lambda run, record: all(record.get(k) == v for k, v in point["record"].items()))
    elif at == "file":  # right after a model file is written (between the stages)
        _after(fit, "write_bytes", lambda path, payload: Path(path).name == point["name"])
    elif at == "checkpoint_write":  # the k-th checkpoint's tensors written in its .partial folder, no state.json
        calls = {"n": 0}

        def nth(*args: Any, **kwargs: Any) -> bool:
            calls["n"] += 1
            return calls["n"] == point["n"]
        _after(state, "save_file", nth)
    elif at == "quality":  # the model is complete, the held-out check (and its log record) not yet done
        original = fit.fit_quality

        def stop_first(*args: Any, **kwargs: Any) -> Any:
            _stop()
            return original(*args, **kwargs)
        fit.fit_quality = stop_first
    else:
        raise ValueError(f"unknown kill point {point!r}")


if __name__ == "__main__":
    install_stop(json.loads(sys.argv[1]))
    from nwb_ldns.cli.main import cli

    cli(sys.argv[2:], prog_name="nwb-ldns")
