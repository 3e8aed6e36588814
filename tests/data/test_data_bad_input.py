"""Bad input gives one NWBLDNSError line naming the problem and the fix, and never modifies the input file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import reader_fixtures
from nwb_ldns.data import load_session
from nwb_ldns.errors import InputFileError, NWBLDNSError, OptionError, SessionContentError


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_rejected(path: Path, error: type[NWBLDNSError], pattern: str, **options) -> str:
    """load_session(path) raises `error` matching `pattern` (one line) and leaves the file's bytes unchanged."""
    before = digest(path) if path.is_file() else None
    with pytest.raises(error, match=pattern) as caught:
        load_session(path, **options)
    message = str(caught.value)
    assert "\n" not in message
    if before is not None:
        assert digest(path) == before
    return message


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory, mock_counts):
    """Copies of the mock session edited into each broken shape, plus hand-made non-NWB files."""
    source, _ = mock_counts
    root = tmp_path_factory.mktemp("broken")

    def unsort(f):
        data = f["units/spike_times"][()]
        data[1], data[2] = data[2] + 0.001, data[1]
        f["units/spike_times"][...] = data

    def nan_spikes(f):
        data = f["units/spike_times"][()]
        data[5] = np.nan
        f["units/spike_times"][...] = data

    def stop_before_start(f):
        stop = f["intervals/trials/stop_time"][()]
        stop[3] = f["intervals/trials/start_time"][3] - 0.05
        f["intervals/trials/stop_time"][...] = stop

    def beta(f):
        f.attrs["nwb_version"] = "2.0b"

    files = {
        "unsorted": reader_fixtures.edited_copy(source, root / "unsorted.nwb", unsort),
        "nan": reader_fixtures.edited_copy(source, root / "nan.nwb", nan_spikes),
        "stop": reader_fixtures.edited_copy(source, root / "stop.nwb", stop_before_start),
        "beta": reader_fixtures.edited_copy(source, root / "beta.nwb", beta),
    }
    truncated = root / "truncated.nwb"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    files["truncated"] = truncated
    text = root / "notes.nwb"
    text.write_text("this is not an HDF5 file\n")
    files["text"] = text
    files["plain"] = root / "plain.h5"
    reader_fixtures.write_plain_hdf5(files["plain"])
    files["nwb1"] = root / "old.nwb"
    reader_fixtures.write_nwb1(files["nwb1"])
    files["counts"] = root / "counts.nwb"
    reader_fixtures.write_counts_only(files["counts"])
    files["empty"] = root / "empty.nwb"
    reader_fixtures.write_empty_trials(files["empty"])
    return files


def test_missing_file(tmp_path):
    assert_rejected(tmp_path / "nope.nwb", InputFileError, r"does not exist; check the path")


def test_not_hdf5(broken_dir):
    assert_rejected(broken_dir["text"], InputFileError, r"not an HDF5 or Zarr file")


def test_directory_that_is_not_zarr(tmp_path):
    assert_rejected(tmp_path, InputFileError, r"is a directory but not a Zarr store")


def test_truncated_hdf5(broken_dir):
    assert_rejected(broken_dir["truncated"], InputFileError, r"cannot be opened as HDF5.*truncated or corrupt")


def test_hdf5_that_is_not_nwb(broken_dir):
    assert_rejected(broken_dir["plain"], InputFileError, r"not NWB \(no 'nwb_version' attribute\)")


def test_nwb1_rejected_with_version(broken_dir):
    assert_rejected(broken_dir["nwb1"], InputFileError, r"NWB schema version NWB-1\.0\.6 \(NWB 1\.x\).*convert it")


def test_matnwb_beta_rejected_with_version(broken_dir):
    assert_rejected(broken_dir["beta"], InputFileError, r"NWB schema version 2\.0b \(a MatNWB 2\.0 beta schema\)")


def test_no_units_lists_count_series(broken_dir):
    message = assert_rejected(broken_dir["counts"], SessionContentError, r"has no Units table")
    assert "--counts-series" in message and "processing/ecephys/binned" in message
    # and the hint works
    ds = load_session(broken_dir["counts"], counts_series="processing/ecephys/binned")
    assert ds.sizes == {"trial": 5, "time": 40, "unit": 3}


def test_unsorted_spike_times(broken_dir):
    assert_rejected(broken_dir["unsorted"], SessionContentError, r"unit 100 has unsorted spike times; rewrite")


def test_nan_spike_times(broken_dir):
    assert_rejected(broken_dir["nan"], SessionContentError, r"unit 100 has NaN or infinite spike times")


def test_stop_before_start(broken_dir):
    assert_rejected(broken_dir["stop"], SessionContentError, r"stop_time < start_time in rows with ids \[3\]")


def test_unknown_align_column_lists_columns(mock_counts):
    path, _ = mock_counts
    message = assert_rejected(path, OptionError, r"no column 'move_onset_time'", align="move_onset_time",
                              window=(-0.1, 0.1))
    assert "go_time" in message and "start_time" in message


def test_align_without_window(mock_counts):
    path, _ = mock_counts
    assert_rejected(path, OptionError, r"needs --window START STOP", align="go_time")


def test_window_outside_recording(mock_counts):
    path, _ = mock_counts
    assert_rejected(path, SessionContentError, r"runs outside the recording.*choose a smaller --window",
                    window=(-1.0, 0.2))


def test_empty_trials(broken_dir):
    assert_rejected(broken_dir["empty"], SessionContentError, r"has no rows \(empty trials\)")


def test_unknown_trials_table_lists_tables(mock_counts):
    path, _ = mock_counts
    message = assert_rejected(path, SessionContentError, r"no trial table 'recognition_table'",
                              trials_table="recognition_table")
    assert "intervals/trials" in message and "--window-length" in message


def test_real_file_default_trials_table_lists_its_tables(real_nwb_path):
    message = assert_rejected(real_nwb_path, SessionContentError, r"no trial table 'trials'")
    for name in ("encoding_table", "recognition_table", "timediscrimination_table"):
        assert f"intervals/{name}" in message


def test_bad_options(mock_counts):
    path, _ = mock_counts
    assert_rejected(path, OptionError, r"--bin-width must be a positive", bin_width=0)
    assert_rejected(path, OptionError, r"STOP must be greater than START", window=(0.2, 0.1))
    assert_rejected(path, OptionError, r"cannot read --units-filter term", unit_filter="quality>3")
    assert_rejected(path, OptionError, r"do not combine it with --align/--window", window_length=1.0,
                    window=(0.0, 0.1))
    assert_rejected(path, OptionError, r"no TimeSeries 'tx9'", counts_series="tx9")


def test_unsupported_url_schemes():
    with pytest.raises(InputFileError, match=r"gs:// sources are not supported.*s3://BUCKET/KEY or dandi://"):
        load_session("gs://bucket/session.nwb")
    with pytest.raises(InputFileError, match=r"remote Zarr store.*download"):
        load_session("https://example.org/session.nwb.zarr")


def test_duplicate_unit_ids_are_refused_at_load(maze_session, tmp_path):
    """Two units under one id would be merged or mislabelled in every output, so the load refuses them; a filter
    that leaves one of the pair out loads (the ids of the selected units are what must be unique)."""
    source, truth = maze_session

    def repeat_heldout_id(f):
        ids = f["units/id"][()]
        ids[-1] = ids[-2]  # the two held-out units share an id
        f["units/id"][...] = ids

    path = reader_fixtures.edited_copy(source, tmp_path / "dup.nwb", repeat_heldout_id)
    message = assert_rejected(path, SessionContentError, r"1 unit id\(s\) appear more than once.*\(1040\)",
                              bin_width=0.02)
    assert "unique id" in message and "--units-filter" in message
    session = load_session(path, bin_width=0.02, unit_filter="heldout==False")
    assert list(session["unit"].values) == list(truth["ids"][:-2])
