"""Atomic outputs (nwb_ldns.fileio.atomic_output): create-if-absent, replacement, and the check at the rename.

Each case runs with Linux renameat2 and with the fallback used where the kernel or file system lacks it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from hardening_helpers import assert_refused, invoke, partials, snapshot


@pytest.fixture(params=["renameat2", "fallback"])
def rename_mode(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr("nwb_ldns.fileio._renameat2", lambda source, target, flags: False)
    return request.param


def _fill(path: Path, text: str) -> None:
    (path / "data" if path.is_dir() else path).write_text(text)


def _content(path: Path) -> str:
    return (path / "data" if path.is_dir() else path).read_text()


@pytest.mark.parametrize("is_dir", [False, True], ids=["file", "directory"])
def test_second_writer_to_one_output_fails_and_replaces_nothing(tmp_path, rename_mode, is_dir):
    from nwb_ldns.errors import OutputExistsError
    from nwb_ldns.fileio import atomic_output

    target = tmp_path / "out.nwb"
    with pytest.raises(OutputExistsError, match="created by another process"):
        with atomic_output(target, is_dir=is_dir) as slow:
            _fill(slow, "slow run")
            with atomic_output(target, is_dir=is_dir) as fast:  # a second run starts later, ends first
                _fill(fast, "fast run")
    assert _content(target) == "fast run"
    assert not partials(tmp_path)


@pytest.mark.parametrize("is_dir", [False, True], ids=["file", "directory"])
def test_replacement_keeps_the_old_output_until_the_new_one_is_complete(tmp_path, rename_mode, is_dir):
    from nwb_ldns.fileio import atomic_output

    target = tmp_path / "store"
    if is_dir:
        target.mkdir()
    _fill(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True, is_dir=is_dir) as tmp:
            _fill(tmp, "half")
            assert _content(target) == "old"
            raise RuntimeError("crash while writing")
    assert _content(target) == "old" and not partials(tmp_path)
    with atomic_output(target, overwrite=True, is_dir=is_dir) as tmp:
        _fill(tmp, "new")
    assert _content(target) == "new" and not partials(tmp_path)


def test_overwrite_checks_the_target_again_before_replacing_it(workspace, tmp_path):
    """Something unrelated put at the output while we wrote is not replaced (the rule holds at the rename)."""
    from nwb_ldns.errors import OutputExistsError
    from nwb_ldns.fileio import atomic_output

    target = tmp_path / "synth.nwb"
    shutil.copy2(workspace / "synth.nwb", target)  # ours: --overwrite may replace it
    with pytest.raises(OutputExistsError, match="not an NWB file written by nwb-ldns"):
        with atomic_output(target, overwrite=True, kind="nwb") as tmp:
            tmp.write_bytes(b"new")
            target.unlink()
            target.write_text("a user's file that appeared meanwhile")
    assert target.read_text() == "a user's file that appeared meanwhile" and not partials(tmp_path)


def test_two_sample_runs_to_one_file_do_not_both_succeed(workspace, tmp_path, monkeypatch, rename_mode):
    """`sample` whose output is written by another run while it writes: exit 2, the other run's file stays."""
    from pynwb import NWBHDF5IO

    out = tmp_path / "synthetic.nwb"
    write = NWBHDF5IO.write

    def other_run_finishes_first(self, *args, **kwargs):
        write(self, *args, **kwargs)
        shutil.copy2(workspace / "synth.nwb", out)

    monkeypatch.setattr(NWBHDF5IO, "write", other_run_finishes_first)
    model_before = snapshot(workspace / "model.ldns")
    result = invoke("sample", workspace / "model.ldns", "--n", "2", "--sampler", "ddim", "--steps", "2", "--quiet",
                    "--out", out)
    assert_refused(result, "created by another process")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == hashlib.sha256((workspace / "synth.nwb").read_bytes()).hexdigest()
    assert not partials(tmp_path) and snapshot(workspace / "model.ldns") == model_before
