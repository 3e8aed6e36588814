"""I/O faults end as one `Error:` line (exit code 2, no traceback, inputs byte-identical, nothing under the final
name): damaged inputs (a corrupted gzip chunk, a Zarr store with a pickle codec), outputs on a read-only or full
file system, and stale partial outputs of killed runs. Unexpected exceptions keep their traceback and say they are
a bug. Remote reads (retries, then one error) are tested in tests/data/test_data_sources.py.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardening_helpers import FAST_SET, assert_refused, invoke, snapshot
from io_fault_helpers import corrupt_spike_chunk, make_pickle_store, run_cases, unshare_available

DAMAGED = "is damaged: hdf5 cannot read the dataset /units/spike_times"
PICKLE = "dataset units/spike_times uses a pickle codec ('pickle'); nwb-ldns refuses it because decoding it can run"
UNKNOWN_CODEC = "uses a codec nwb-ldns does not know ('evil'); nwb-ldns refuses it"
NOT_OURS = "is not an NWB file written by nwb-ldns"


@pytest.fixture(scope="module")
def damaged(workspace, tmp_path_factory) -> Path:
    """A folder with the workspace's model and session, a session with a corrupted chunk, and Zarr stores whose
    spike_times use a pickle codec (its payload creates `marker` when unpickled) or an unknown codec."""
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.export.testing import make_generated_dataset

    root = tmp_path_factory.mktemp("damaged")
    shutil.copy2(workspace / "real.nwb", root / "real.nwb")
    shutil.copy2(workspace / "synth.nwb", root / "synth.nwb")
    shutil.copytree(workspace / "model.ldns", root / "model.ldns")
    corrupt_spike_chunk(workspace / "real.nwb", root / "corrupt.nwb")
    clean = tmp_path_factory.mktemp("clean") / "clean.nwb.zarr"
    write_synthetic(make_generated_dataset(n_trials=14, n_bins=32, n_units=8, bin_width=0.01, seed=1), clean,
                    backend="zarr")
    make_pickle_store(clean, root / "pickle.nwb.zarr", root / "MARKER")
    make_pickle_store(clean, root / "evil.nwb.zarr", root / "MARKER", codec="evil")
    return root


@pytest.fixture
def unsafe_pickle_allowed(monkeypatch):
    """numcodecs' own guard switched off (as NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE=1 does): only ours remains."""
    import numcodecs.pickles

    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", True)


# id, arguments ({d} = the damaged folder), expected fragment of the one Error line
DAMAGED_INPUTS = [
    ("chunk-fit-dry-run", ("fit", "{d}/corrupt.nwb", "--out", "{d}/m", "--dry-run"), DAMAGED),
    ("chunk-fit", ("fit", "{d}/corrupt.nwb", "--out", "{d}/m", "--preset", "tiny", *FAST_SET), DAMAGED),
    ("chunk-inspect", ("inspect", "{d}/corrupt.nwb"), DAMAGED),
    ("chunk-baseline-psth", ("baseline", "psth", "{d}/corrupt.nwb", "--out", "{d}/psth.nwb"), DAMAGED),
    ("chunk-evaluate", ("evaluate", "{d}/corrupt.nwb", "{d}/synth.nwb", "--bootstrap", "0", "--no-memorisation"),
     DAMAGED),
    ("pickle-fit-dry-run", ("fit", "{d}/pickle.nwb.zarr", "--out", "{d}/m", "--dry-run"), PICKLE),
    ("pickle-fit", ("fit", "{d}/pickle.nwb.zarr", "--out", "{d}/m", "--preset", "tiny", *FAST_SET), PICKLE),
    ("pickle-inspect", ("inspect", "{d}/pickle.nwb.zarr"), PICKLE),
    ("pickle-baseline-psth", ("baseline", "psth", "{d}/pickle.nwb.zarr", "--out", "{d}/psth.nwb"), PICKLE),
    ("pickle-evaluate-generated", ("evaluate", "{d}/real.nwb", "{d}/pickle.nwb.zarr", "--bootstrap", "0",
                                   "--no-memorisation"), PICKLE),
    ("pickle-evaluate-real", ("evaluate", "{d}/pickle.nwb.zarr", "{d}/synth.nwb", "--bootstrap", "0",
                              "--no-memorisation"), PICKLE),
    ("pickle-export", ("export", "{d}/pickle.nwb.zarr", "--dandiset", "{d}/dandiset"), PICKLE),
    ("pickle-sample-overwrite", ("sample", "{d}/model.ldns", "--n", "2", "--out", "{d}/pickle.nwb.zarr", "--zarr",
                                 "--overwrite"), NOT_OURS),
    ("unknown-codec-inspect", ("inspect", "{d}/evil.nwb.zarr"), UNKNOWN_CODEC),
]


@pytest.mark.parametrize("arguments, fragment", [row[1:] for row in DAMAGED_INPUTS],
                         ids=[row[0] for row in DAMAGED_INPUTS])
def test_damaged_input_is_one_error(damaged, unsafe_pickle_allowed, arguments, fragment):
    before = snapshot(damaged)
    result = invoke(*[argument.format(d=damaged) for argument in arguments])
    assert_refused(result, fragment)
    assert not (damaged / "MARKER").exists(), "the pickle payload was executed"
    assert snapshot(damaged) == before


def test_pickle_payload_is_live(damaged, unsafe_pickle_allowed, monkeypatch, tmp_path):
    """Control: without our codec check, reading the store does run the payload (so the rows above prove it)."""
    import nwb_ldns.data.opening as opening
    from nwb_ldns.data import load_session

    store = shutil.copytree(damaged / "pickle.nwb.zarr", tmp_path / "pickle.nwb.zarr")
    marker = damaged / "MARKER"
    monkeypatch.setattr(opening, "refuse_unsafe_codecs", lambda path: None)
    try:
        with pytest.raises(Exception):  # the payload returns a file object, not an array: the read then fails
            load_session(store)
        assert marker.exists(), "the control payload did not run: the pickle rows would prove nothing"
    finally:
        marker.unlink(missing_ok=True)


def test_corrupted_chunk_names_the_fix(damaged):
    """The message says what to do: the file is damaged on disk, get it again."""
    result = invoke("inspect", damaged / "corrupt.nwb")
    assert_refused(result, "download or copy it again")


# --- outputs on a read-only or full file system (real mounts in a private namespace) -----------------------------

MODEL_FLAGS = ("--preset", "tiny", "--set", "autoencoder.epochs=1", "--set", "diffusion.epochs=1", "--quiet")
EVALUATE = ("evaluate", "{w}/real.nwb", "{w}/synth.nwb", "--bootstrap", "0", "--no-memorisation")
# id, output name on the tmpfs ({o}), arguments ({w} = workspace), tmpfs size (None: mounted read-only)
DISK_CASES = [
    ("convert-lorenz", "lorenz.nwb", ("convert", "lorenz", "{o}", "--trials", "20", "--no-progress"), "256k"),
    ("sample", "s.nwb", ("sample", "{w}/model.ldns", "--n", "200", "--out", "{o}"), "64k"),
    ("sample-zarr", "s.nwb.zarr", ("sample", "{w}/model.ldns", "--n", "200", "--out", "{o}", "--zarr"), "64k"),
    ("fit", "m.ldns", ("fit", "{w}/real.nwb", "--out", "{o}", *MODEL_FLAGS), "64k"),
    ("baseline-psth", "psth.nwb", ("baseline", "psth", "{w}/real.nwb", "--out", "{o}"), "64k"),
    ("evaluate-report", "report", (*EVALUATE, "--report", "{o}"), "16k"),
    ("evaluate-json", "result.json", (*EVALUATE, "--json", "{o}"), "4k"),
]
DISK_ROWS = [(f"{case_id}-{mode}", name, arguments, size if mode == "full" else None)
             for mode in ("full", "read-only") for case_id, name, arguments, size in DISK_CASES]


@pytest.fixture(scope="module")
def disk_results(workspace, tmp_path_factory):
    """Run every DISK_ROWS case once, in one worker process inside `unshare -rm` (skipped where not permitted)."""
    scratch = tmp_path_factory.mktemp("mounts")
    reason = unshare_available(scratch)
    if reason is not None:
        pytest.skip(reason)
    cases = []
    for row_id, name, arguments, size in DISK_ROWS:
        mount = scratch / row_id
        mount.mkdir()
        cases.append({"id": row_id, "mount": str(mount), "mode": "full" if size else "ro", "size": size,
                      "args": [a.format(w=workspace, o=mount / name) for a in arguments]})
    before = snapshot(workspace)
    process, results = run_cases(cases)
    return process, results, before, snapshot(workspace)


@pytest.mark.parametrize("row_id, size", [(row[0], row[3]) for row in DISK_ROWS], ids=[row[0] for row in DISK_ROWS])
def test_output_on_full_or_read_only_disk(disk_results, row_id, size):
    process, results, before, after = disk_results
    assert row_id in results, f"worker exit {process.returncode}\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    result = results[row_id]
    shown = f"{result}\nworker stderr:\n{process.stderr[-2000:]}"
    assert result["exit_code"] == 2, shown
    assert "Traceback" not in result["stderr"] + result["stdout"], shown
    errors = [line for line in result["stderr"].splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, shown
    expected = "no space left on the device" if size else "the file system is read-only"
    assert expected in errors[0] and "cannot write" in errors[0], shown
    assert result["left"] == [], f"left on the tmpfs (partial or final output): {result['left']}"
    assert after == before, "an input changed"


def test_full_disk_convert_in_a_fresh_process(tmp_path):
    """The case that used to segfault (exit 139): the console script, a real exit code, nothing left behind."""
    reason = unshare_available(tmp_path)
    if reason is not None:
        pytest.skip(reason)
    from tests.cli_helpers import NWB_LDNS

    mount = tmp_path / "full"
    mount.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs '{mount}' && '{NWB_LDNS}' convert lorenz '{mount}/l.nwb' "
              f"--trials 20 --no-progress; code=$?; echo LEFT; ls -A '{mount}'; exit $code")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TQDM_DISABLE="1"))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Segmentation" not in done.stderr, done.stderr[-3000:]
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: cannot write {mount}/l.nwb: no space left on the device; free some space there or choose an output "
        "on another disk, then run the command again (nothing was written under the final name)"]
    assert done.stdout.split("LEFT", 1)[1].split() == []


# --- stale partial outputs of killed runs ---------------------------------------------------------------------------

def test_stale_partials_of_a_dead_run_are_removed(scratch):
    """A later run to the same output removes `.<name>.XXXXXXXX.partial` folders no live process holds.

    Kept: one locked by a live writer (flock, as atomic_output holds it), one younger than STALE_AFTER_S (a
    writer that has just created it), fit's `.replacement.partial` and a name that is not ours.
    """
    out = scratch / "psth.nwb"
    old = time.time() - 3600

    def plant(name: str, age: float = old) -> Path:
        folder = scratch / name
        folder.mkdir()
        (folder / "psth.nwb").write_bytes(b"half a file")
        os.utime(folder, (age, age))
        return folder

    dead = plant(".psth.nwb.k6zfmnb_.partial")
    live = plant(".psth.nwb.a1b2c3d4.partial")
    young = plant(".psth.nwb.zz99yy88.partial", age=time.time())
    replacement = plant(".psth.nwb.replacement.partial")
    foreign = plant(".psth.nwb.backup.partial.d")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        result = invoke("baseline", "psth", scratch / "real.nwb", "--out", out)
    finally:
        os.close(holder)
    assert result.exit_code == 0, result.output
    assert out.is_file() and not dead.exists()
    assert live.exists() and young.exists() and replacement.exists() and foreign.exists()


def test_partial_is_locked_while_written(tmp_path):
    """atomic_output holds a flock on its partial folder, so a second process sees it as live."""
    from nwb_ldns.fileio import _try_lock, atomic_output

    with atomic_output(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"x")
        assert _try_lock(tmp.parent) is None
    assert (tmp_path / "out.bin").read_bytes() == b"x" and not tmp.parent.exists()


# --- the CLI boundary: an unexpected exception is a bug, an OS error naming a file is not ---------------------------

def _boom(error: BaseException):
    def raise_it(*args, **kwargs):
        raise error
    return raise_it


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("boom"), OSError(errno.EIO, "I/O error")],
                         ids=["runtime-error", "key-error", "eio-without-file"])
def test_unexpected_exception_keeps_traceback_and_says_bug(workspace, monkeypatch, error):
    import nwb_ldns.cli.commands.baseline as baseline
    from nwb_ldns import __version__

    monkeypatch.setattr(baseline, "load_session_from_options", _boom(error))
    result = invoke("baseline", "psth", workspace / "real.nwb", "--out", workspace / "never.nwb")
    assert result.exit_code not in (0, 2), result.output
    assert "Traceback (most recent call last)" in result.stderr and type(error).__name__ in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"This is a bug in nwb-ldns {__version__}") and "report" in last, result.stderr
    assert not any(line.startswith("Error:") for line in result.stderr.splitlines())
    assert not (workspace / "never.nwb").exists()


@pytest.mark.parametrize("error, fragment", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.nwb"), "cannot write /data/out.nwb: no space left"),
    (OSError(errno.EROFS, "Read-only file system", "/data/out.nwb"), "/data/out.nwb: the file system is read-only"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/in.nwb"), "/data/in.nwb: permission denied"),
], ids=["enospc", "erofs", "eacces"])
def test_os_error_naming_a_file_is_one_error(workspace, monkeypatch, error, fragment):
    import nwb_ldns.cli.commands.baseline as baseline

    monkeypatch.setattr(baseline, "load_session_from_options", _boom(error))
    assert_refused(invoke("baseline", "psth", workspace / "real.nwb", "--out", workspace / "never.nwb"), fragment)


def test_bug_line_in_a_fresh_process(tmp_path):
    """Through a real interpreter: the traceback, then the bug line last, exit code 1."""
    code = ("import sys, nwb_ldns.cli.commands.baseline as m\n"
            "m.load_session_from_options = lambda *a, **k: 1 / 0\n"
            "from nwb_ldns.cli.main import cli\n"
            "sys.argv = ['nwb-ldns', 'baseline', 'psth', 'in.nwb', '--out', 'out.nwb']\n"
            "cli()\n")
    (tmp_path / "in.nwb").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["in.nwb"]
    assert done.returncode == 1, done.stderr
    assert "ZeroDivisionError" in done.stderr and "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("This is a bug in nwb-ldns")
