"""The split column: `data_split` in the files we write, so pynapple's IntervalSet.split() is not shadowed; old
files with `split` still read the same; generated files carry `generated` and load_session keeps it."""

from __future__ import annotations

import numpy as np
import pynapple as nap
import pynwb

from nwb_ldns.data import load_session
from nwb_ldns.export import write_synthetic
from nwb_ldns.export.testing import make_generated_dataset
from nwb_ldns.testing import write_mock_session


def test_pynapple_filters_converted_trials_by_split(tmp_path):
    path = tmp_path / "s.nwb"
    write_mock_session(path, n_trials=20)
    trials = nap.load_file(str(path))["trials"]
    train = trials[trials.data_split == "train"]
    assert isinstance(train, nap.IntervalSet)
    assert len(train) == int((load_session(path)["split"].values == "train").sum()) > 0
    assert callable(trials.split)  # pynapple's own method is still there


def test_a_file_with_the_old_split_column_reads_the_same(tmp_path):
    new = tmp_path / "new.nwb"
    write_mock_session(new, n_trials=20)
    old = tmp_path / "old.nwb"
    with pynwb.NWBHDF5IO(str(new), "r") as io:
        nwb = io.read()
        trials = nwb.trials.to_dataframe()
        spikes = [nwb.units["spike_times"][i] for i in range(len(nwb.units))]
        ids = nwb.units.id[:]
    copy = pynwb.NWBFile(session_description="old layout", identifier="old",
                         session_start_time=nwb.session_start_time)
    copy.add_trial_column("split", "train/val/test (the column name of earlier versions)")
    copy.add_trial_column("condition", "condition")
    copy.add_trial_column("go_time", "go time")
    for _, row in trials.iterrows():
        copy.add_trial(start_time=row.start_time, stop_time=row.stop_time, split=row.data_split,
                       condition=row.condition, go_time=row.go_time)
    for unit, times in zip(ids, spikes):
        copy.add_unit(id=int(unit), spike_times=times)
    with pynwb.NWBHDF5IO(str(old), "w") as io:
        io.write(copy)
    a, b = load_session(new), load_session(old)
    assert a["split"].values.tolist() == b["split"].values.tolist()
    np.testing.assert_array_equal(a["counts"].values, b["counts"].values)


def test_a_generated_file_read_back_has_only_generated_trials(tmp_path):
    out = tmp_path / "g.nwb"
    write_synthetic(make_generated_dataset(n_trials=6), out)
    back = load_session(out)
    assert set(back["split"].values.tolist()) == {"generated"}
    assert back.sizes["trial"] == 6
