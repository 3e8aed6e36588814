"""The MC_Maze recipe's pure parts: the LDNS monkey split, the reach angle, the unit order and layout detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nwb_ldns.data.nlb import MC_MAZE, heldin_then_heldout, ldns_monkey_split, looks_like_mc_maze, reach_angle
from nwb_ldns.errors import SessionContentError


def test_split_of_the_published_file_is_2008_71_216_like_ldns():
    nlb = np.array(["train"] * 1721 + ["val"] * 574)
    labels = ldns_monkey_split(nlb)
    assert [(labels == s).sum() for s in ("train", "val", "test")] == [2008, 71, 216]
    assert (labels[:1721] == "train").all() and (labels[1721:1721 + 287] == "train").all()
    # the held-back half is cut exactly as torch's random_split([71, 216], seed 42) cuts it
    val, test = torch.utils.data.random_split(range(287), [71, 216], generator=torch.Generator().manual_seed(42))
    held_back = labels[1721 + 287:]
    assert np.flatnonzero(held_back == "val").tolist() == sorted(val.indices)
    assert np.flatnonzero(held_back == "test").tolist() == sorted(test.indices)


def test_split_keeps_table_order_with_interleaved_labels_and_ignores_other_labels():
    nlb = np.array(["val", "train", "test", "val", "none", "val", "train", "val", "val", "val", "val", "val"])
    labels = ldns_monkey_split(nlb)
    assert labels[2] == "none" and labels[4] == "none"
    val_rows = np.flatnonzero(nlb == "val")
    assert (labels[val_rows[:4]] == "train").all()
    assert sorted(labels[val_rows[4:]].tolist()) == ["test", "test", "test", "val"]


def test_split_without_val_trials_says_which_file_to_use():
    with pytest.raises(SessionContentError, match="desc-train"):
        ldns_monkey_split(np.array(["test"] * 10))


def test_reach_angle_reads_the_velocity_direction_at_bin_50():
    n = 6
    truth = np.linspace(-3, 3, n)
    behaviour = np.zeros((n, 140, 2))
    behaviour[:, 50] = np.stack([np.cos(truth), np.sin(truth)], axis=1) * 300
    behaviour[:, 49] = [1.0, 0.0]  # other bins do not matter
    assert np.allclose(reach_angle(behaviour), truth)
    behaviour[0, 50] = np.nan
    behaviour[1, 50] = 0.0
    angle = reach_angle(behaviour)
    assert np.isnan(angle[:2]).all() and np.isfinite(angle[2:]).all()
    with pytest.raises(SessionContentError, match="bin 50"):
        reach_angle(np.zeros((2, 40, 2)))


def test_units_are_ordered_heldin_then_heldout_by_id():
    ids = np.array([2741, 1031, 1051, 1500, 1200])
    heldout = np.array([False, True, False, True, False])
    order = heldin_then_heldout(ids, heldout)
    assert ids[order].tolist() == [1051, 1200, 2741, 1031, 1500]


def test_layout_detection_tells_the_maze_fixture_from_a_plain_session(tmp_path):
    from pynwb import NWBHDF5IO

    from nwb_ldns.testing import write_mc_maze_like, write_mock_session

    write_mc_maze_like(tmp_path / "maze.nwb", n_trials=8, n_early_onset=0)
    write_mock_session(tmp_path / "plain.nwb")
    with NWBHDF5IO(str(tmp_path / "maze.nwb"), "r") as io:
        assert looks_like_mc_maze(io.read())
    with NWBHDF5IO(str(tmp_path / "plain.nwb"), "r") as io:
        assert not looks_like_mc_maze(io.read())
    assert MC_MAZE.reader_options()["window"] == (-0.25, 0.45)
    assert round((MC_MAZE.window[1] - MC_MAZE.window[0]) / MC_MAZE.bin_width) == 140
