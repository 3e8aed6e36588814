"""SIGKILL of real processes: `fit` then `--resume` equals an uninterrupted run; `sample` and `export` killed
during the write leave nothing under the final name.

The kill points are drawn with random.Random(14) and cover every stage: an autoencoder epoch, the autoencoder's
"done" record before its weights, between the stages, a diffusion epoch, the middle of a checkpoint write, the
held-out check after the model is complete, and a random time after the first checkpoint. All killed `fit` runs
start at once (each stops itself at its point, see kill_helpers) to keep the module short.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from hardening_helpers import invoke, partials, snapshot
from kill_helpers import kill_all, kill_when, kill_when_stopped, start

AE_EPOCHS, DN_EPOCHS = 5, 5
# small batches: 8 steps per epoch, so an epoch lasts long enough for a time-based kill to land inside training
SETTINGS = {"autoencoder.epochs": AE_EPOCHS, "autoencoder.val_every": 1, "autoencoder.checkpoint_every": 1,
            "autoencoder.batch_size": 2, "diffusion.epochs": DN_EPOCHS, "diffusion.checkpoint_every": 1,
            "diffusion.batch_size": 2, "diffusion.num_steps": 20,
            "training.device": "cpu"}  # the killed child and the in-process resume on the same device, bit-identical
SET_ARGS = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")] + ["--quiet"]


def _kill_points() -> list[tuple[str, dict | None, float]]:
    """(id, point where the child stops itself or None for a time-based kill, delay after the first checkpoint)."""
    rng = random.Random(14)
    between = rng.choice(["autoencoder.safetensors", "latent_stats.json"])
    return [
        ("autoencoder-epoch", {"at": "epoch", "stage": "autoencoder", "epoch": rng.randint(1, AE_EPOCHS - 1)}, 0.0),
        ("autoencoder-done-record", {"at": "log", "record": {"stage": "autoencoder", "event": "done"}}, 0.0),
        (f"between-stages-{between}", {"at": "file", "name": between}, 0.0),
        ("diffusion-epoch", {"at": "epoch", "stage": "diffusion", "epoch": rng.randint(1, DN_EPOCHS - 1)}, 0.0),
        ("checkpoint-write", {"at": "checkpoint_write", "n": rng.randint(1, AE_EPOCHS + DN_EPOCHS)}, 0.0),
        ("held-out-check", {"at": "quality"}, 0.0),
        ("random-time", None, round(rng.uniform(0.0, 0.4), 3)),
    ]


KILL_POINTS = _kill_points()


def _model_files(model_dir: Path) -> dict[str, object]:
    """Every file of a model directory -> sha256, the training log as records without their timing field."""
    files: dict[str, object] = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_dir():
            continue
        key = str(path.relative_to(model_dir))
        if key == "training_log.jsonl":
            files[key] = [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
                          for line in path.read_text().splitlines()]
        else:
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _first_checkpoint(model_dir: Path):
    def seen() -> bool:
        checkpoints = model_dir / "checkpoints"
        return checkpoints.is_dir() and any(not p.name.startswith(".") for p in checkpoints.iterdir())
    return seen


@pytest.fixture(scope="module")
def kill_root(tmp_path_factory, trained_model) -> Path:
    root = tmp_path_factory.mktemp("kills")
    shutil.copy2(trained_model[0], root / "real.nwb")
    return root


@pytest.fixture(scope="module")
def killed_runs(kill_root) -> dict[str, tuple[Path, dict[str, str]]]:
    """Every kill point's model directory as the SIGKILL left it, with a snapshot of that state."""
    runs = {}
    for name, point, _ in KILL_POINTS:
        out = kill_root / f"{name}.ldns"
        runs[name] = (out, kill_root / f"{name}.log",
                      start(["fit", kill_root / "real.nwb", "--preset", "tiny", *SET_ARGS, "--out", out],
                            kill_root / f"{name}.log", point))
    killed = {}
    try:
        for name, point, delay in KILL_POINTS:  # the time-based one first: the others wait, stopped
            out, log, process = runs[name]
            if point is None:
                assert kill_when(process, log, _first_checkpoint(out), delay), "fit finished before the kill"
        for name, point, _ in KILL_POINTS:
            out, log, process = runs[name]
            if point is not None:
                kill_when_stopped(process, log)
            killed[name] = (out, snapshot(out))
    finally:
        kill_all([process for _, _, process in runs.values()])
    return killed


@pytest.fixture(scope="module")
def reference(kill_root) -> dict[str, object]:
    """The model directory of the same command run without a kill."""
    out = kill_root / "uninterrupted.ldns"
    result = invoke("fit", kill_root / "real.nwb", "--preset", "tiny", *SET_ARGS, "--out", out)
    assert result.exit_code == 0, result.output
    return _model_files(out)


def _where(name: str, out: Path) -> None:
    """The kill landed where its point says (so each row tests the state it claims to)."""
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    files = {p.name for p in out.iterdir()}
    events = [(r.get("stage"), r.get("event")) for r in log]
    if name == "held-out-check":
        assert "denoiser.safetensors" in files and ("quality" not in {r.get("event") for r in log})
        return
    assert "denoiser.safetensors" not in files
    if name == "autoencoder-epoch":
        assert log[-1]["stage"] == "autoencoder" and "autoencoder.safetensors" not in files
    elif name == "autoencoder-done-record":
        assert events[-1] == ("autoencoder", "done") and "autoencoder.safetensors" not in files
    elif name.startswith("between-stages"):
        assert events[-1] == ("autoencoder", "done") and name.rsplit("-", 1)[1] in files
        assert not (out / "checkpoints" / "latest.json").read_text().count("diffusion")
    elif name == "diffusion-epoch":
        assert log[-1]["stage"] == "diffusion"
    elif name == "checkpoint-write":
        assert partials(out / "checkpoints"), "the kill should leave the checkpoint's .partial folder"


@pytest.mark.parametrize("name", [row[0] for row in KILL_POINTS])
def test_fit_killed_then_resumed_equals_an_uninterrupted_run(name, killed_runs, reference, kill_root):
    out, state = killed_runs[name]
    _where(name, out)
    session_before = hashlib.sha256((kill_root / "real.nwb").read_bytes()).hexdigest()
    result = invoke("fit", kill_root / "real.nwb", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, f"killed at {name} ({sorted(state)}):\n{result.output}"
    resumed = _model_files(out)
    differing = sorted(key for key in set(resumed) | set(reference) if resumed.get(key) != reference.get(key))
    assert not differing, f"killed at {name}, the resumed model differs in {differing}"
    assert not partials(out)
    assert hashlib.sha256((kill_root / "real.nwb").read_bytes()).hexdigest() == session_before


# --- sample and export killed during the write -------------------------------------------------------------------

SAMPLE_TRIALS = 6000  # ~15 MB of NWB: the write lasts tens of milliseconds, long enough to be caught


def _partial_beside(target: Path):
    """Whether the output is being written: its file exists inside a `.partial` folder beside target."""
    prefix = f".{target.name}."

    def seen() -> bool:
        try:
            return any(entry.name.startswith(prefix) and entry.name.endswith(".partial")
                       and os.path.exists(os.path.join(entry.path, target.name))
                       for entry in os.scandir(target.parent))
        except FileNotFoundError:  # export creates the subject folder first
            return False
    return seen


def _leftovers(target: Path) -> list[Path]:
    return [path for path in target.parent.iterdir() if ".partial" in path.name]


def _kill_during_write(args: list, target: Path, log: Path, complete, attempts: int = 3) -> None:
    """SIGKILL `nwb-ldns ARGS` as soon as its .partial appears beside target, while the output is being written.

    Whenever the kill came, the final name holds nothing or a complete file (checked by `complete`). A kill that
    came too late (after the rename: a loaded machine can delay the poll) is retried with the file removed.
    """
    for _ in range(attempts):
        killed = kill_when(start(args, log), log, _partial_beside(target))
        writing = [path for path in _leftovers(target) if (path / target.name).exists()]
        if killed and writing:
            assert not target.exists(), "a killed write left a file under the final name"
            return
        if target.exists():
            complete(target)
            target.unlink()
    pytest.fail(f"the write of {target} finished before the kill in {attempts} attempts")


def _rerun_completes(args: list, target: Path, complete) -> None:
    """The same command again succeeds with a complete file and removes the killed run's leftovers."""
    past = time.time() - 3600  # as old as a later rerun finds them (fresh partials may be another run's)
    for path in _leftovers(target):
        os.utime(path, (past, past))
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    complete(target)
    assert not _leftovers(target)


def test_sample_killed_during_the_write_leaves_no_file_under_the_final_name(trained_model, tmp_path):
    from nwb_ldns.data import load_session

    model = tmp_path / "model.ldns"
    shutil.copytree(trained_model[1], model)
    target = tmp_path / "out" / "synthetic.nwb"
    target.parent.mkdir()
    before = snapshot(model)
    args = ["sample", model, "--n", SAMPLE_TRIALS, "--out", target, "--quiet"]

    def complete(path: Path) -> None:
        assert load_session(path).sizes["trial"] == SAMPLE_TRIALS
    _kill_during_write(args, target, tmp_path / "sample.log", complete)
    assert snapshot(model) == before
    _rerun_completes(args, target, complete)
    assert snapshot(model) == before


@pytest.fixture(scope="module")
def large_synthetic(tmp_path_factory) -> Path:
    """A synthetic NWB file padded to 160 MB with an extra dataset, so copying it takes long enough to catch."""
    import h5py
    import numpy as np

    from nwb_ldns.export import write_synthetic
    from nwb_ldns.export.testing import make_generated_dataset

    path = tmp_path_factory.mktemp("large") / "synth.nwb"
    write_synthetic(make_generated_dataset(n_trials=8, n_bins=32, n_units=8, bin_width=0.01, seed=3), path)
    with h5py.File(path, "a") as handle:
        handle.create_dataset("padding", data=np.random.default_rng(0).integers(0, 255, 160 * 2**20, np.uint8))
    return path


def test_export_killed_during_the_copy_leaves_no_file_under_the_final_name(large_synthetic, tmp_path):
    import h5py

    from nwb_ldns.export.dandiset import dandi_targets

    source = tmp_path / "synth.nwb"
    shutil.copy2(large_synthetic, source)
    source_digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dandiset = tmp_path / "dandiset"
    target = dandi_targets([source], dandiset)[0]
    args = ["export", source, "--dandiset", dandiset, "--no-validate"]

    def complete(path: Path) -> None:  # the whole copy, with the metadata export writes into it last
        with h5py.File(path, "r") as copy, h5py.File(source, "r") as original:
            assert copy["padding"].shape == original["padding"].shape
            assert copy["general/related_publications"][0].decode().startswith("doi:")
    _kill_during_write(args, target, tmp_path / "export.log", complete)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == source_digest
    _rerun_completes(args, target, complete)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == source_digest
