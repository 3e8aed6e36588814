"""Angle and velocity conditioning on the MC_Maze fixture (issue 13 items 2-4): a model conditioned on the reach
angle or the hand velocity generates trials that the ridge decoder (trained on real trials) reads back at what was
requested, clearly better than an unconditional model; the CLI writes the conditions into the NWB output, which
nwbinspector (dandi profile) and pynapple accept."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from nwb_ldns.metrics.evaluate import behaviour_decoding

pytestmark = pytest.mark.slow
N_SAMPLES = 60
BUDGET = {"autoencoder.epochs": 60, "diffusion.epochs": 200}
# measured on this fixture (seed 2): angle error 0.54 rad conditioned vs 1.39 unconditional; velocity R^2 0.29 vs
# -0.06 (tests/training/test_monkey_conditioning.py, 2026-12-05); the thresholds leave room for other seeds/BLAS
ANGLE_MARGIN_RAD = 0.4
R2_MARGIN = 0.15


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    from nwb_ldns.data import load_session
    from nwb_ldns.testing import write_mc_maze_like

    root = tmp_path_factory.mktemp("maze")
    path = root / "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    write_mc_maze_like(path, n_trials=160, n_heldin=16, n_heldout=4, n_early_onset=0, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_session(path, recipe="mc_maze")
    train = ds.isel(trial=np.flatnonzero(ds["split"].values == "train"))
    held = ds.isel(trial=np.flatnonzero(ds["split"].values != "train"))
    return root, path, ds, train, held


@pytest.fixture(scope="module")
def models(maze):
    from nwb_ldns.train import fit

    root, _, ds, _, _ = maze
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for name, extra in (("angle", {"diffusion.condition": "trial_reach_angle"}), ("none", {}),
                            ("velocity", {"diffusion.condition": "behavior", "diffusion.condition_kind": "trace"})):
            out[name] = fit(ds, root / f"{name}.ldns", preset="tiny", overrides={**BUDGET, **extra}, progress=False)
    finally:
        torch.set_num_threads(previous)
    return out


def _requested(held):
    pick = np.resize(np.arange(held.sizes["trial"]), N_SAMPLES)
    return held["trial_reach_angle"].values[pick], held["behavior"].values[pick]


def test_angle_conditioned_samples_decode_to_the_requested_angle(maze, models):
    _, _, _, train, held = maze
    angles, traces = _requested(held)
    errors = {}
    for name, conditions in (("angle", angles), ("none", None)):
        generated = models[name].sample(N_SAMPLES, seed=1, conditions=conditions, progress=False)
        if name == "angle":
            assert np.allclose(generated["trial_reach_angle"].values, angles)
        generated = generated.assign(trial_reach_angle=("trial", angles))  # unconditional: scored against the same
        errors[name] = behaviour_decoding(train, held, [generated])["angle_error_generated"][0]
    assert errors["angle"] < errors["none"] - ANGLE_MARGIN_RAD, errors
    assert errors["angle"] < 0.9, errors


def test_velocity_conditioned_samples_decode_to_the_requested_velocity(maze, models):
    _, _, _, train, held = maze
    _, traces = _requested(held)
    conditioned = models["velocity"].sample(N_SAMPLES, seed=1, conditions=traces, progress=False)
    assert np.allclose(conditioned["behavior"].values, traces)
    unconditioned = models["none"].sample(N_SAMPLES, seed=1, progress=False)
    unconditioned = unconditioned.assign(behavior=(("trial", "time", "behavior_dim"), traces))
    r2 = behaviour_decoding(train, held, [conditioned, unconditioned])["r2_generated"]
    assert r2[0] > r2[1] + R2_MARGIN and r2[0] > 0.1, r2


def test_cli_writes_the_conditions_and_other_tools_read_the_files(maze, models):
    import ndx_ldns  # noqa: F401
    import pynwb
    from click.testing import CliRunner
    from nwbinspector import Importance, inspect_nwbfile, load_config

    from nwb_ldns.cli.main import cli

    root, path, _, _, held = maze
    runner = CliRunner()
    angle_out, velocity_out = root / "angle.nwb", root / "velocity.nwb"
    result = runner.invoke(cli, ["sample", str(root / "angle.ldns"), "--n", "8", "--out", str(angle_out),
                                 "--condition", f"angle=from:{path}", "--per-trace", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["sample", str(root / "velocity.ldns"), "--n", "6", "--out", str(velocity_out),
                                 "--condition", f"velocity=from:{path}", "--quiet"])
    assert result.exit_code == 0, result.output
    test_rows = np.flatnonzero(held["split"].values == "test")
    with pynwb.NWBHDF5IO(str(angle_out), "r") as io:
        angles = io.read().trials["reach_angle"][:]
    expected = np.repeat(held["trial_reach_angle"].values[test_rows], 2)[:8]
    assert np.allclose(angles, expected)
    with pynwb.NWBHDF5IO(str(velocity_out), "r") as io:
        nwb = io.read()
        series = nwb.processing["behavior"]["conditioning_behavior"]
        written = series.data[:].reshape(6, -1, 2)
        assert series.comments == "columns=[x,y]"
        assert "velocity" in nwb.lab_meta_data["ldns_provenance"].conditioning or "trace" in \
            nwb.lab_meta_data["ldns_provenance"].conditioning
    assert np.allclose(written, held["behavior"].values[test_rows][:6], atol=1e-6)
    for out in (angle_out, velocity_out):
        messages = list(inspect_nwbfile(nwbfile_path=str(out), config=load_config("dandi")))
        bad = [m for m in messages if m.importance.value >= Importance.BEST_PRACTICE_VIOLATION.value]
        assert bad == [], [f"{m.check_function_name}: {m.message}" for m in bad]
    nap = pytest.importorskip("pynapple")
    data = nap.load_file(str(angle_out))
    assert len(data["units"]) == held.sizes["unit"] and len(data["trials"]) == 8
    evaluated = runner.invoke(cli, ["evaluate", str(path), str(velocity_out), "--bootstrap", "0",
                                    "--no-memorisation"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "its requested behaviour decoded from its spikes" in evaluated.stdout
