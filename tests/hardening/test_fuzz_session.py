"""Fuzzing the Units and trials tables through `load_session` (hypothesis).

Each example is an NWB file: a small valid session written once by pynwb, then edited with h5py (the tables'
datasets replaced), which is what a file from another writer or a damaged file looks like and costs about a
millisecond per example. Property: `load_session` returns a session that passes `validate_session_dataset`, whose
counts are finite non-negative integers, zero outside the mask, with consistent shapes; or it raises one of our
errors (NWBLDNSError) with a one-line message. Any other exception is a bug.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz_helpers import fuzz_settings, ours_or_result

# spike and trial times: mostly plausible (inside a 4 s recording), sometimes anything a float can be
PLAUSIBLE = st.floats(0.0, 4.0, allow_nan=False)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
TIME = st.one_of(PLAUSIBLE, PLAUSIBLE, ANY_FLOAT, st.sampled_from([0.0, -0.0, -1.0, 1e12, 1e300, 5e-324]))
SORTED_SPIKES = st.lists(PLAUSIBLE, max_size=25).map(sorted)
SPIKES = st.one_of(SORTED_SPIKES, SORTED_SPIKES, st.lists(TIME, max_size=25))
UNITS = st.lists(SPIKES, max_size=5)


def _laid_out(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(gap before, duration) per trial -> (start, stop) of consecutive trials that do not overlap."""
    trials, clock = [], 0.0
    for gap, duration in steps:
        trials.append((clock + gap, clock + gap + duration))
        clock += gap + duration
    return trials


# well-formed trials (gaps and durations drawn, so they do not overlap) or any pairs of times
ORDERED_TRIALS = st.lists(st.tuples(st.floats(0.0, 0.5), st.floats(0.01, 0.6)), min_size=1, max_size=6).map(_laid_out)
TRIALS = st.one_of(ORDERED_TRIALS, ORDERED_TRIALS, st.lists(st.tuples(TIME, TIME), max_size=6))
DTYPE = st.sampled_from(["<f8", "<f8", "<f4", ">f8", "<i8", "<u2", "<i1", "|b1", "S12"])

VALID_UNITS = [[0.05, 0.4, 1.2, 2.5], [0.3, 0.31, 1.9], [], [3.0]]
VALID_TRIALS = [(0.0, 0.32), (1.0, 1.32), (2.0, 2.32), (3.0, 3.32)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A valid session with Units (spike times) and trials (start/stop only), written by pynwb."""
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="fuzz template", identifier="fuzz-template",
                  session_start_time=datetime(2024, 1, 2, tzinfo=timezone.utc))
    for spikes in ([0.1, 0.5], [0.2], [0.9]):
        nwb.add_unit(spike_times=spikes)
    for start, stop in VALID_TRIALS:
        nwb.add_trial(start_time=start, stop_time=stop)
    path = tmp_path_factory.mktemp("fuzz") / "template.nwb"
    with NWBHDF5IO(path, "w") as io:
        io.write(nwb)
    return path


@pytest.fixture(scope="module")
def case_path(template) -> Path:
    return template.with_name("case.nwb")


def _cast(values: list[float], dtype: str) -> np.ndarray:
    """Values in a column dtype a foreign writer might have used (casting NaN to an integer gives garbage: fine)."""
    array = np.asarray(values, dtype=np.float64)
    if dtype.startswith("S"):
        return array.astype(dtype)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return array.astype(dtype)


def _replace(group: h5py.Group, name: str, data: np.ndarray) -> None:
    """Put new data under an existing dataset name, keeping its attributes (neurodata type, description...)."""
    attributes = {key: value for key, value in group[name].attrs.items() if key != "target"}
    del group[name]
    group.create_dataset(name, data=data)
    for key, value in attributes.items():
        group[name].attrs[key] = value


def write_case(template: Path, path: Path, units: list[list[float]], trials: list[tuple[float, float]], *,
               spike_dtype: str = "<f8", trial_dtype: str = "<f8", index: list[int] | None = None,
               unit_ids: list[int] | None = None) -> Path:
    """The template with its Units and trials tables replaced by these values and dtypes."""
    shutil.copyfile(template, path)
    flat = [time for spikes in units for time in spikes]
    ends = np.cumsum([len(spikes) for spikes in units]) if index is None else np.asarray(index)
    with h5py.File(path, "a") as handle:
        table = handle["units"]
        _replace(table, "spike_times", _cast(flat, spike_dtype))
        _replace(table, "spike_times_index", ends.astype(np.int64))
        table["spike_times_index"].attrs["target"] = table["spike_times"].ref
        _replace(table, "id", np.asarray(range(len(units)) if unit_ids is None else unit_ids, dtype=np.int64))
        table = handle["intervals/trials"]
        _replace(table, "start_time", _cast([start for start, _ in trials], trial_dtype))
        _replace(table, "stop_time", _cast([stop for _, stop in trials], trial_dtype))
        _replace(table, "id", np.arange(len(trials), dtype=np.int64))
    return path


def check_loaded(path: Path, **options) -> None:
    """The property: a valid session with integer counts, or one of our errors (never another exception)."""
    from nwb_ldns.data import load_session
    from nwb_ldns.data.schema import validate_session_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped or overlapping trials are reported as warnings: allowed
        session, _ = ours_or_result(lambda: load_session(path, **options))
    if session is None:
        return
    validate_session_dataset(session)
    counts, mask = session["counts"].values, session["mask"].values
    assert counts.ndim == 3 and mask.shape == counts.shape[:2]
    assert session["split"].shape == (counts.shape[0],)
    assert np.isfinite(counts).all() and (counts >= 0).all() and (counts == np.round(counts)).all()
    assert not counts[~mask].any(), "counts outside the mask"


def test_template_is_a_valid_session(template, case_path):
    """The fuzzing starts from a file that loads (so refusals below are about the fuzzed tables)."""
    from nwb_ldns.data import load_session

    session = load_session(write_case(template, case_path, VALID_UNITS, VALID_TRIALS))
    assert dict(session.sizes) == {"trial": 4, "time": 32, "unit": 4}
    assert int(session["counts"].sum()) == 5  # the spikes inside the four trials


@fuzz_settings(60)
@given(units=UNITS)
@example(units=[])
@example(units=[[], []])
@example(units=[[float("nan")]])
@example(units=[[-0.5, 0.1]])
@example(units=[[float("inf"), 0.2]])
@example(units=[[2.0, 1.0, 0.1]])
@example(units=[[1e300]])
def test_fuzzed_spike_times(template, case_path, units):
    check_loaded(write_case(template, case_path, units, VALID_TRIALS))


@fuzz_settings(60)
@given(trials=TRIALS)
@example(trials=[])
@example(trials=[(float("nan"), 0.32)])
@example(trials=[(0.32, 0.0)])
@example(trials=[(1.0, 1.0)])
@example(trials=[(0.0, 0.32), (0.1, 0.42)])
@example(trials=[(0.0, 1e12)])
@example(trials=[(-1.0, -0.5)])
@example(trials=[(0.0, float("inf"))])
def test_fuzzed_trials(template, case_path, trials):
    check_loaded(write_case(template, case_path, VALID_UNITS, trials))


@fuzz_settings(60)
@given(units=UNITS, trials=TRIALS, spike_dtype=DTYPE, trial_dtype=DTYPE,
       bin_width=st.one_of(st.none(), st.floats(1e-12, 10.0), st.sampled_from([1e-9, 5e-324, 1e300])))
@example(units=VALID_UNITS, trials=VALID_TRIALS, spike_dtype="S12", trial_dtype="<f8", bin_width=None)
@example(units=[[1.175494351e-38]], trials=[(0.0, 0.5)], spike_dtype="S12", trial_dtype="<f8", bin_width=None)
@example(units=VALID_UNITS, trials=VALID_TRIALS, spike_dtype="<f8", trial_dtype="|b1", bin_width=None)
@example(units=VALID_UNITS, trials=VALID_TRIALS, spike_dtype="<f8", trial_dtype="<f8", bin_width=1e-9)
def test_fuzzed_dtypes_and_bin_width(template, case_path, units, trials, spike_dtype, trial_dtype, bin_width):
    path = write_case(template, case_path, units, trials, spike_dtype=spike_dtype, trial_dtype=trial_dtype)
    check_loaded(path, bin_width=bin_width)


@st.composite
def _broken_index(draw):
    """Units whose ragged index or ids do not fit their data (a damaged or hand-edited file)."""
    units = draw(st.lists(st.lists(PLAUSIBLE, max_size=6), min_size=1, max_size=4))
    n_spikes = sum(len(spikes) for spikes in units)
    index = draw(st.lists(st.integers(-3, n_spikes + 3), min_size=len(units), max_size=len(units))
                 | st.lists(st.integers(0, n_spikes), max_size=6))
    ids = draw(st.none() | st.lists(st.integers(-2, 2), min_size=len(units), max_size=len(units)))
    return units, index, ids


@fuzz_settings(40)
@given(case=_broken_index())
@example(case=([[0.1, 0.2], [0.3]], [2, 1], None))
@example(case=([[0.1, 0.2], [0.3]], [2, 9], None))
@example(case=([[0.1, 0.2], [0.3]], [-1, 3], None))
@example(case=([[0.1], [0.3]], [1, 2], [0, 0]))
@example(case=([[0.0, 0.0]], [0], None))  # data past the last offset (found by hypothesis)
def test_fuzzed_units_index_and_ids(template, case_path, case):
    units, index, ids = case
    check_loaded(write_case(template, case_path, units, VALID_TRIALS, index=index, unit_ids=ids))
