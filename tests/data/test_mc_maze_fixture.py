"""The MC_Maze-like fixture follows the published layout (data-formats.md 2.2/2.6) and its activity depends on the
reach: the stand-in the monkey reader and the conditioning tests rely on, checked with h5py/pynwb directly."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nwb_ldns.mc_maze_fixture import write_mc_maze_like


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    path = tmp_path_factory.mktemp("maze") / "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    return path, write_mc_maze_like(path, n_trials=40, seed=3)


def test_units_have_per_trial_obs_intervals_heldout_and_electrodes(maze):
    path, truth = maze
    with h5py.File(path, "r") as f:
        units = f["units"]
        n_units = len(units["id"])
        obs_index = units["obs_intervals_index"][:]
        assert np.array_equal(np.diff(np.concatenate([[0], obs_index])), np.full(n_units, len(truth.start)))
        assert units["heldout"].dtype == bool and units["heldout"][:].sum() == truth.heldout.sum() > 0
        assert len(units["electrodes"][:]) == n_units
        assert np.array_equal(units["id"][:], truth.unit_ids) and np.all(np.diff(truth.unit_ids) > 0)
        assert truth.unit_ids[-1] - truth.unit_ids[0] > n_units  # non-contiguous, like the real ids


def test_spikes_lie_inside_the_trials_and_are_sorted(maze):
    _, truth = maze
    for times in truth.spike_times:
        assert np.all(np.diff(times) >= 0)
        trial = np.searchsorted(truth.start, times, side="right") - 1
        assert np.all(trial >= 0) and np.all(times < truth.stop[trial])


def test_trials_have_the_nlb_columns_and_early_onsets_leave_the_window(maze):
    path, truth = maze
    with h5py.File(path, "r") as f:
        trials = f["intervals/trials"]
        for column in ("move_onset_time", "split", "trial_type", "maze_id", "target_pos", "target_pos_index",
                       "barrier_pos", "go_cue_time", "rt", "delay", "success"):
            assert column in trials, column
        assert set(s.decode() for s in trials["split"][:]) == {"train", "val"}
    assert np.all(truth.start[1:] > truth.stop[:-1])  # non-overlapping, gaps between trials
    inside = (truth.move_onset - 0.25 >= truth.start) & (truth.move_onset + 0.55 <= truth.stop)
    assert np.array_equal(~inside, truth.early_onset) and truth.early_onset.sum() == 2


def test_behaviour_is_1khz_nan_between_trials_with_nlb_column_names(maze):
    path, truth = maze
    with h5py.File(path, "r") as f:
        behaviour = f["processing/behavior"]
        assert set(behaviour) == {"hand_vel", "hand_pos", "cursor_pos", "eye_pos"}
        for name in behaviour:
            assert behaviour[name].attrs["comments"] == "columns=[x,y]"
        assert behaviour["hand_vel"].attrs["neurodata_type"] == "TimeSeries"
        assert behaviour["hand_pos"].attrs["neurodata_type"] == "SpatialSeries"
        times = behaviour["hand_pos/timestamps"][:]
        velocity = behaviour["hand_vel/data"][:]
    assert np.allclose(np.diff(times), 1e-3) and np.allclose(times * 1e3, np.round(times * 1e3))
    between = (times > truth.stop[0]) & (times < truth.start[1])
    assert between.any() and np.isnan(velocity[between]).all()
    # the reach direction read the NLB/LDNS way: velocity 100 ms after onset
    at = np.searchsorted(times, truth.move_onset + 0.1)
    angle = np.arctan2(velocity[at, 1], velocity[at, 0])
    assert np.allclose(np.angle(np.exp(1j * (angle - truth.direction))), 0, atol=1e-6)


def test_activity_depends_on_reach_direction(maze):
    """Spike counts around onset follow each unit's preferred direction: a real signal for conditioning tests."""
    _, truth = maze
    agree = 0
    for times, preferred in zip(truth.spike_times, truth.preferred):
        counts = np.array([np.sum((times >= m - 0.1) & (times < m + 0.2)) for m in truth.move_onset])
        toward = np.cos(truth.direction - preferred) > 0.5
        agree += counts[toward].mean() > counts[np.cos(truth.direction - preferred) < -0.5].mean()
    assert agree >= len(truth.spike_times) - 1
