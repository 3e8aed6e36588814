"""Fixtures for the hardening tests: one workspace of real, generated and derived files, built once per run.

The workspace holds what a user has on disk: a recording (not written by us), a tiny trained model, a generated
file, an `evaluate --json` result and report, an unrelated folder and file, and a dandiset folder whose target
name is taken by an unrelated file. Refused commands run against it and must leave it byte-identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from hardening_helpers import FAST, invoke
from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse: one torch thread


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, mock_session_path) -> tuple[Path, Path]:
    """(session file, tiny model directory trained on it); copy before changing either."""
    from nwb_ldns.data import load_session
    from nwb_ldns.train import fit

    root = tmp_path_factory.mktemp("trained")
    real = root / "real.nwb"
    shutil.copy2(mock_session_path, real)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_session(real), root / "model.ldns", preset="tiny", overrides=FAST, progress=False)
    finally:
        torch.set_num_threads(previous)
    return real, root / "model.ldns"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, trained_model) -> Path:
    """The shared workspace (see the module docstring); tests that change files work on copies."""
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.export.dandiset import dandi_targets
    from nwb_ldns.export.testing import make_generated_dataset

    real, model = trained_model
    root = tmp_path_factory.mktemp("workspace")
    shutil.copy2(real, root / "real.nwb")
    shutil.copytree(model, root / "model.ldns")
    write_synthetic(make_generated_dataset(n_trials=14, n_bins=32, n_units=8, bin_width=0.01, seed=1),
                    root / "synth.nwb")
    result = invoke("evaluate", root / "real.nwb", root / "synth.nwb", "--bootstrap", "0", "--no-memorisation",
                    "--json", root / "result.json", "--report", root / "report")
    assert result.exit_code == 0, result.output
    (root / "unrelated").mkdir()
    (root / "unrelated" / "thesis.txt").write_text("three years of work\n")
    (root / "notes.txt").write_text("lab notes\n")
    taken = dandi_targets([root / "synth.nwb"], root / "dandiset")[0]
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"someone else's file under the DANDI name")
    return root


@pytest.fixture
def scratch(workspace, tmp_path) -> Path:
    """A private copy of the workspace for a test that changes files."""
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    return copy
