"""Sources other than a local pynwb HDF5 file: Zarr, NWB 2.1-era and MatNWB files (remote ones: test_remote.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import reader_fixtures
from nwb_ldns.data import load_session

SOURCE_ATTRS = ("source_path", "source_sha256")


def assert_same_session(a: xr.Dataset, b: xr.Dataset, ignore=SOURCE_ATTRS) -> None:
    """Equal variables, coordinates and attrs, except the attrs that name where the data came from."""
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    attrs_a = {k: v for k, v in a.attrs.items() if k not in ignore}
    attrs_b = {k: v for k, v in b.attrs.items() if k not in ignore}
    assert attrs_a == attrs_b


def test_zarr_equals_hdf5(maze_session, tmp_path):
    import hdmf_zarr
    import numcodecs
    from pynwb import NWBHDF5IO

    path, _ = maze_session
    store = tmp_path / "maze.nwb.zarr"
    with NWBHDF5IO(str(path), "r") as reader, hdmf_zarr.ZarrIO(
        str(store), mode="w", manager=reader.manager, object_codec_class=numcodecs.JSON
    ) as writer:
        writer.export(src_io=reader, write_args=dict(link_data=False))
    options = dict(align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005, behavior="hand_vel",
                   unit_filter="heldout==False")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_hdf5 = load_session(path, **options)
        from_zarr = load_session(store, **options)
    assert_same_session(from_hdf5, from_zarr)
    assert from_zarr.attrs["source_path"] == str(store)
    assert len(from_zarr.attrs["source_sha256"]) == 64
    assert from_zarr.attrs["source_sha256"] != from_hdf5.attrs["source_sha256"]


def test_nwb21_style_file_reads(mock_counts, tmp_path):
    path, counts = mock_counts
    old = reader_fixtures.edited_copy(path, tmp_path / "nwb21.nwb", reader_fixtures.make_nwb21_style)
    import h5py

    with h5py.File(old, "r") as f:  # the fixture really has the old layout
        assert f["units"].attrs["colnames"].dtype.kind == "S"
        assert f["units/spike_times_index"].dtype == np.int32
    ds = load_session(old)
    np.testing.assert_array_equal(ds["counts"].values, counts)
    assert ds.attrs["source_nwb_version"] == "2.1.0"
    assert "trial_condition" in ds


def test_real_matnwb_file_each_trial_table(real_nwb_path):
    before = real_nwb_path.stat().st_mtime_ns
    expected_rows = {"encoding_table": 90, "recognition_table": 180, "timediscrimination_table": 180}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for table, rows in expected_rows.items():
            ds = load_session(real_nwb_path, trials_table=table, bin_width=0.05)
            assert ds.sizes["trial"] == rows and ds.sizes["unit"] == 35
            assert ds.attrs["trials_table"] == f"intervals/{table}"
            assert ds["counts"].values.sum() > 0
            assert "trial_RT" in ds or table == "encoding_table"
        aligned = load_session(real_nwb_path, trials_table="intervals/recognition_table", align="fixcross_time",
                               window=(0.0, 1.0), bin_width=0.02)
    assert aligned.sizes["time"] == 50 and aligned["mask"].values.all()
    # single-valued electrodes region without an index -> each unit's electrode location
    assert set(aligned["unit_location"].values.tolist()) == {"hippocampus_right", "amygdala_right"}
    assert aligned.attrs["source_identifier"] == "TWH103_CBID4"
    assert aligned.attrs["source_sha256"] == "1f6d811347d83d9693ce824bded9d73f5c88d8542e78069211da52381153f046"
    assert real_nwb_path.stat().st_mtime_ns == before


def test_real_file_overlapping_trials_counted_in_each(real_nwb_path):
    """recognition_table has 3 trials overlapping the next one; spikes in an overlap count in both trials."""
    import h5py

    with h5py.File(real_nwb_path, "r") as f:
        flat = f["units/spike_times"][()]
        index = f["units/spike_times_index"][()].astype(np.int64)
    spikes = np.split(flat, index[:-1])
    with pytest.warns(UserWarning, match="trial windows overlap"):
        ds = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.05)
    lengths = ds["mask"].values.sum(axis=1)
    for w, start in enumerate(ds["align_time"].values):
        edges = start + np.arange(lengths[w] + 1) * 0.05
        expected = np.stack([np.histogram(s, edges)[0] for s in spikes], axis=1)
        np.testing.assert_array_equal(ds["counts"].values[w, : lengths[w]], expected)


def test_real_file_filter_units_by_electrode_location(real_nwb_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        amygdala = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.1,
                                unit_filter="location==amygdala_right")
        everything = load_session(real_nwb_path, trials_table="recognition_table", bin_width=0.1)
    assert amygdala.sizes["unit"] == 10
    assert set(amygdala["unit_location"].values.tolist()) == {"amygdala_right"}
    np.testing.assert_array_equal(
        amygdala["counts"].values, everything["counts"].sel(unit=amygdala["unit"].values).values
    )
