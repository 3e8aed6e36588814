"""Data-parallel fit (torch.distributed, gloo on CPU): 2 processes follow 1 process with the same global batch, and a
run stopped in 2 processes resumes in 1 to the weights of an uninterrupted 1-process run.

Tolerance: the ranks' gradients are summed in another order than one process sums them, so losses and weights agree
to float32 rounding, not bit for bit: relative 1e-5 on every logged loss, absolute 1e-5 on every weight.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from ddp_ranks import rank_main
from nwb_ldns.data import load_session
from nwb_ldns.testing import write_mock_session
from nwb_ldns.training.fit import fit

LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-5
EPOCHS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text().splitlines() if line.strip()]


def _losses(model_dir: Path) -> dict[tuple[str, int, str], float]:
    keys = ("train_loss", "val_poisson_nll", "val_denoising_loss")
    return {(r["stage"], r["epoch"], k): r[k] for r in _log(model_dir) for k in keys if k in r and "stage" in r}


def _assert_same_run(got: Path, expected: Path) -> None:
    got_losses, expected_losses = _losses(got), _losses(expected)
    assert got_losses.keys() == expected_losses.keys()
    assert len(expected_losses) >= 4 * EPOCHS
    for key, value in expected_losses.items():
        assert got_losses[key] == pytest.approx(value, rel=LOSS_RTOL), key
    for name in ("autoencoder", "denoiser"):
        a, b = load_file(str(got / f"{name}.safetensors")), load_file(str(expected / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
        assert worst < WEIGHT_ATOL, (name, worst)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The session, the settings, and an uninterrupted 1-process run."""
    root = tmp_path_factory.mktemp("ddp")
    path = root / "session.nwb"
    write_mock_session(path, n_trials=40, n_bins=32, n_units=8)
    session = load_session(path)
    n_train = int((session["split"].values == "train").sum())
    batch = n_train - 1  # each epoch ends with a batch of 1 trial: rank 1 has no rows there
    overrides = {"autoencoder.epochs": EPOCHS, "diffusion.epochs": EPOCHS, "autoencoder.batch_size": batch,
                 "diffusion.batch_size": batch, "autoencoder.val_every": 1, "diffusion.val_every": 1,
                 "autoencoder.checkpoint_every": 1, "diffusion.checkpoint_every": 1, "training.device": "cpu"}
    one = root / "one.ldns"
    fit(session, one, preset="tiny", overrides=overrides, progress=False)
    return {"root": root, "path": path, "session": session, "overrides": overrides, "one": one}


def _spawn_two(runs, out_dir: Path, stop_at: tuple[str, int] | None, timeout: float = 240.0) -> None:
    """Two ranks through torch.multiprocessing, running the library's fit as torchrun's workers do."""
    context = mp.start_processes(rank_main, args=(2, _free_port(), str(runs["path"]), str(out_dir), runs["overrides"],
                                                  stop_at), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=2):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the 2-process fit did not finish in {timeout:.0f} s")


def test_two_processes_follow_one_process(runs):
    """`fit --processes 2` (torchrun, gloo): the same losses and weights as one process with the same batch."""
    out = runs["root"] / "two.ldns"
    settings = [arg for key, value in runs["overrides"].items() for arg in ("--set", f"{key}={value}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", str(runs["path"]), "--preset", "tiny",
                             "--out", str(out), "--quiet", "--processes", "2", *settings],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("model directory:") == 1  # rank 0 alone reports
    _assert_same_run(out, runs["one"])
    start = next(r for r in _log(out) if r.get("event") == "start")
    assert start["processes"] == 2
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted(p.relative_to(runs["one"]).as_posix() for p in runs["one"].rglob("*") if p.is_file())
    assert files == expected  # rank 1 wrote nothing of its own


@pytest.mark.parametrize("stop_at", [("autoencoder", 2), ("diffusion", 2)], ids=lambda s: f"{s[0]}-{s[1]}")
def test_resume_in_one_process_from_a_two_process_checkpoint(runs, stop_at):
    """Stopped after an epoch of 2 processes, resumed in 1: the weights of the uninterrupted 1-process run."""
    out = runs["root"] / f"stopped-{stop_at[0]}.ldns"
    _spawn_two(runs, out, stop_at)
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())["checkpoint"]
    assert latest == f"{stop_at[0]}-epoch{stop_at[1]:05d}"
    assert not (out / "denoiser.safetensors").exists()
    torch.manual_seed(1234)  # the resume must not depend on the global RNG state it starts with
    fit(runs["session"], out, resume=True, progress=False)
    _assert_same_run(out, runs["one"])


def test_checkpoint_does_not_depend_on_the_number_of_processes(runs):
    """The state a 2-process run checkpoints equals the 1-process run's at the same epoch (weights and RNG)."""
    out = runs["root"] / "stopped-early.ldns"
    _spawn_two(runs, out, ("autoencoder", 1))
    from nwb_ldns.training.state import load_checkpoint

    state = load_checkpoint(out / "checkpoints")
    one = runs["root"] / "one-stopped.ldns"

    class _Stop(Exception):
        pass

    def stop(stage: str, epoch: int) -> None:
        if (stage, epoch) == ("autoencoder", 1):
            raise _Stop

    with pytest.raises(_Stop):
        fit(runs["session"], one, preset="tiny", overrides=runs["overrides"], progress=False, on_epoch_end=stop)
    reference = load_checkpoint(one / "checkpoints")
    assert state["epoch"] == reference["epoch"] == 1
    for key in reference["model"]:
        assert np.allclose(state["model"][key].numpy(), reference["model"][key].numpy(), atol=WEIGHT_ATOL), key
    assert torch.equal(state["rng"]["shuffle"], reference["rng"]["shuffle"])
    assert torch.equal(state["rng"]["noise"], reference["rng"]["noise"])


def test_a_refusal_on_rank_0_is_one_error_line_and_stops_every_rank(runs):
    """`fit --processes 2` onto an existing model: exit 2, one `Error:` line, no torchrun traceback, model intact."""
    before = {p: p.read_bytes() for p in runs["one"].rglob("*") if p.is_file()}
    result = subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", str(runs["path"]), "--preset", "tiny",
                             "--out", str(runs["one"]), "--processes", "2"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "already exists" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in runs["one"].rglob("*") if p.is_file()} == before
