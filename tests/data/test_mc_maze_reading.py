"""The MC_Maze file read the LDNS way (recipe "mc_maze"), on the fixture in the published layout: shapes, the split
rule, dropped-trial counts, unit order, the lagged velocity (pinned against the fixture's known velocity) and the
reach angle."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from nwb_ldns.data import load_session
from nwb_ldns.data.nlb import MC_MAZE, ldns_monkey_split
from nwb_ldns.errors import OptionError
from nwb_ldns.testing import write_mc_maze_like


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    path = tmp_path_factory.mktemp("maze") / "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    truth = write_mc_maze_like(path, n_trials=40, n_heldin=6, n_heldout=3, n_early_onset=3, seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_session(path, recipe="mc_maze")
    return path, truth, ds, [str(w.message) for w in caught]


def test_shapes_bins_and_units(maze):
    _, truth, ds, _ = maze
    assert ds.sizes["time"] == 140 and ds.attrs["bin_width"] == 0.005
    assert ds.sizes["unit"] == len(truth.unit_ids)  # held-in and held-out together
    heldout = ds["unit_heldout"].values.astype(bool)
    assert not heldout[: (~truth.heldout).sum()].any() and heldout[(~truth.heldout).sum():].all()
    ids = ds["unit"].values
    assert np.all(np.diff(ids[~heldout]) > 0) and np.all(np.diff(ids[heldout]) > 0)
    assert ds["mask"].values.all()  # every kept trial is a full 140-bin window


def test_early_onset_trials_are_dropped_and_counted(maze):
    _, truth, ds, notes = maze
    kept = set(ds["trial"].values.tolist())
    assert len(kept) == len(truth.start) - truth.early_onset.sum()
    assert not kept & set(np.flatnonzero(truth.early_onset).tolist())
    recorded = json.loads(ds.attrs["reader_notes"])
    assert any(f"dropped {truth.early_onset.sum()} trials" in note for note in recorded), recorded
    assert any("dropped" in note for note in notes)


def test_split_follows_the_ldns_rule_on_the_table_order(maze):
    _, truth, ds, _ = maze
    expected = ldns_monkey_split(truth.split)
    rows = ds["trial"].values  # trial ids are the table's row ids here
    assert np.array_equal(ds["split"].values, expected[rows])


def test_counts_match_the_spike_times_around_move_onset(maze):
    _, truth, ds, _ = maze
    trial = int(ds["trial"].values[0])
    onset = truth.move_onset[trial]
    edges = onset - 0.25 + 0.005 * np.arange(141)
    for position, unit in enumerate(ds["unit"].values):
        times = truth.spike_times[int(np.flatnonzero(truth.unit_ids == unit)[0])]
        expected = np.histogram(times, bins=edges)[0]
        assert np.array_equal(ds["counts"].values[0, :, position], expected)


def test_velocity_is_lagged_100_ms_and_in_m_per_s(maze):
    """The fixture's velocity is known in closed form: v(t) peaks 180 ms after onset along the reach direction.
    With the 100 ms lag, bin k holds the velocity at onset - 150 ms + 5 k ms (mean over the bin)."""
    from nwb_ldns.mc_maze_fixture import PEAK_SPEED_MM_S, _speed_profile

    _, truth, ds, _ = maze
    trial = int(ds["trial"].values[0])
    speed = np.hypot(*ds["behavior"].values[0].T)
    centres = -0.25 + MC_MAZE.behavior_lag + 0.005 * np.arange(140) + 0.0025
    samples = np.round(centres[:, None] + (np.arange(5)[None, :] - 2) * 0.001, 6)  # the 1 kHz samples of each bin
    expected = _speed_profile(samples).mean(axis=1) * 1e-3
    assert np.allclose(speed, expected, rtol=0.02, atol=1e-3)
    assert int(np.argmax(speed)) == int(round((0.18 - (-0.25 + MC_MAZE.behavior_lag)) / 0.005))
    assert speed.max() == pytest.approx(PEAK_SPEED_MM_S * 1e-3, rel=0.02)
    direction = np.arctan2(ds["behavior"].values[0, 60, 1], ds["behavior"].values[0, 60, 0])
    assert np.cos(direction - truth.direction[trial]) > 0.999


def test_reach_angle_is_the_true_direction(maze):
    _, truth, ds, _ = maze
    rows = ds["trial"].values
    error = np.angle(np.exp(1j * (ds["trial_reach_angle"].values - truth.direction[rows])))
    assert np.abs(error).max() < 1e-3
    assert ds.attrs["recipe"] == "mc_maze" and ds.attrs["behavior_lag"] == 0.1


def test_auto_recipe_needs_the_layout_and_no_reading_options(maze):
    path, _, ds, _ = maze
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = load_session(path, recipe="auto")
        generic = load_session(path, recipe="auto", bin_width=0.01)
    assert auto.attrs.get("recipe") == "mc_maze" and auto.sizes == ds.sizes
    assert "recipe" not in generic.attrs and generic.attrs["bin_width"] == 0.01


def test_unknown_recipe_is_refused(maze):
    path, *_ = maze
    with pytest.raises(OptionError, match="mc_maze"):
        load_session(path, recipe="nlb")


def _invoke(*args):
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_inspect_prints_the_paper_command_and_the_dropped_trials(maze):
    path, truth, _, _ = maze
    result = _invoke("inspect", path)
    assert result.exit_code == 0, result.output
    assert f"nwb-ldns fit {path} --preset monkey --out MODEL_DIR" in result.stdout
    assert "Loaded with recipe mc_maze" in result.stdout
    assert f"dropped {truth.early_onset.sum()} trials whose window is not wholly inside" in result.stdout
    generic = _invoke("inspect", path, "--recipe", "none")
    assert generic.exit_code == 0 and "Loaded with" not in generic.stdout


def test_fit_dry_run_reads_with_the_recipe(maze):
    path, truth, _, _ = maze
    result = _invoke("fit", path, "--preset", "tiny", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"Note: dropped {truth.early_onset.sum()} trials" in result.stderr
    assert '"n_bins": 140' in result.stdout and '"recipe": "mc_maze"' in result.stdout
    generic = _invoke("fit", path, "--preset", "tiny", "--dry-run", "--recipe", "none")
    assert generic.exit_code == 0 and '"recipe": "mc_maze"' not in generic.stdout
