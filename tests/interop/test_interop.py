"""to_pynapple / to_spikeinterface on a converted (mock) file, a generated .nwb.zarr and a session Dataset: the same
spikes per unit and the same trial intervals as the source; the pynapple data_split filter works."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.errors import MissingExtraError, OptionError
from nwb_ldns.export import write_synthetic
from nwb_ldns.export.spikes import spike_arrays_to_counts
from nwb_ldns.export.testing import make_generated_dataset
from nwb_ldns.interop import to_pynapple, to_spikeinterface
from nwb_ldns.testing import write_mock_session


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    path = tmp_path_factory.mktemp("interop") / "mock.nwb"
    counts = write_mock_session(path, n_trials=12, n_bins=16, n_units=5)
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        trials = io.read().trials.to_dataframe()
    return path, counts, trials


@pytest.fixture(scope="module")
def generated_zarr(tmp_path_factory):
    ds = make_generated_dataset(n_trials=8, n_bins=12, n_units=4, variable_length=True, time_offset=-0.05)
    path = write_synthetic(ds, tmp_path_factory.mktemp("interop") / "gen.nwb.zarr", backend="zarr")
    return path, ds


def _per_unit(group) -> list[int]:
    return [len(group[key]) for key in group.keys()]


def test_converted_file_to_pynapple_keeps_spikes_trials_and_split(converted):
    path, counts, trials = converted
    group, intervals = to_pynapple(path)
    assert list(group.keys()) == list(range(100, 105))  # the Units ids
    assert _per_unit(group) == counts.sum(axis=(0, 1)).tolist()
    assert np.allclose(intervals.start, trials["start_time"]) and np.allclose(intervals.end, trials["stop_time"])
    assert list(intervals.data_split) == list(trials["data_split"])
    assert list(intervals.condition) == list(trials["condition"])
    train = intervals[intervals.data_split == "train"]  # the filter a `split` column made impossible
    assert len(train) == int((trials["data_split"] == "train").sum()) > 0


def test_generated_zarr_file_to_pynapple_rebins_to_the_generated_counts(generated_zarr):
    path, ds = generated_zarr
    group, intervals = to_pynapple(path)  # a .nwb.zarr store, which pynapple.load_file cannot open
    counts = ds["counts"].values
    assert _per_unit(group) == counts.sum(axis=(0, 1)).astype(int).tolist()
    assert set(intervals.data_split) == {"generated"}
    valid = ds["mask"].values.sum(axis=1)
    assert np.allclose(intervals.end - intervals.start, valid * 0.01)
    times = [group[key].t for key in group.keys()]
    rebinned = spike_arrays_to_counts(np.concatenate(times), np.cumsum([len(t) for t in times]), intervals.start,
                                      counts.shape[1], 0.01)
    assert np.array_equal(rebinned, counts)


def test_generated_dataset_to_pynapple_equals_its_written_file(generated_zarr):
    path, ds = generated_zarr
    group, intervals = to_pynapple(ds)  # generated trials have no timeline: laid out as write_synthetic does
    assert _per_unit(group) == ds["counts"].values.sum(axis=(0, 1)).astype(int).tolist()
    file_group, file_intervals = to_pynapple(path)
    assert np.allclose(intervals.start, file_intervals.start) and np.allclose(intervals.end, file_intervals.end)
    for key in group.keys():
        assert np.allclose(group[key].t, file_group[key].t, atol=1e-9)
    assert list(intervals.condition) == list(ds["trial_condition"].values)
    assert set(intervals.data_split) == {"generated"}


def test_read_dataset_to_pynapple_uses_its_align_times(converted):
    from nwb_ldns.data import load_session

    path, counts, trials = converted
    ds = load_session(path)
    group, intervals = to_pynapple(ds)
    assert _per_unit(group) == counts.sum(axis=(0, 1)).tolist()
    assert np.allclose(intervals.start, ds["align_time"].values + float(ds["time"].values[0]))
    assert np.allclose(intervals.start, trials["start_time"])
    assert list(intervals.data_split) == list(ds["split"].values)


def test_overlapping_windows_are_cut_with_one_warning():
    counts = np.ones((3, 10, 2), np.float32)
    ds = make_session_dataset(counts, 0.01, align_time=np.array([0.0, 0.05, 1.0]), split=["train", "val", "test"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        group, intervals = to_pynapple(ds)
    assert any("1 of 3 trials overlap" in str(w.message) for w in caught)
    assert len(intervals) == 3 and list(intervals.data_split) == ["train", "val", "test"]  # metadata kept
    assert np.all(intervals.start[1:] > intervals.end[:-1])
    assert _per_unit(group) == [30, 30]


def test_to_spikeinterface_on_file_and_dataset(generated_zarr, converted):
    path, ds = generated_zarr
    sorting = to_spikeinterface(path)
    assert list(sorting.get_unit_ids()) == ds["unit"].values.tolist()
    assert sorting.get_sampling_frequency() == 1e6  # 1 / the Units resolution: no spike time moves
    per_unit = ds["counts"].values.sum(axis=(0, 1)).astype(int).tolist()
    assert [len(sorting.get_unit_spike_train(u)) for u in sorting.get_unit_ids()] == per_unit
    group, _ = to_pynapple(path)
    first = sorting.get_unit_ids()[0]
    assert np.allclose(sorting.get_unit_spike_train(first) / 1e6, group[int(first)].t, atol=1e-9)
    from_dataset = to_spikeinterface(ds, sampling_frequency=30_000)
    assert from_dataset.get_sampling_frequency() == 30_000
    assert [len(from_dataset.get_unit_spike_train(u)) for u in from_dataset.get_unit_ids()] == per_unit
    mock_path, counts, _ = converted
    mock = to_spikeinterface(mock_path)
    assert [len(mock.get_unit_spike_train(u)) for u in mock.get_unit_ids()] == counts.sum(axis=(0, 1)).tolist()
    with pytest.raises(OptionError, match="sampling_frequency"):
        to_spikeinterface(ds, sampling_frequency=0)


def test_missing_extra_names_the_pip_command(monkeypatch, converted):
    monkeypatch.setitem(sys.modules, "pynapple", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"to_pynapple needs .*pynapple.*nwb-ldns\[interop\]"):
        to_pynapple(converted[0])
