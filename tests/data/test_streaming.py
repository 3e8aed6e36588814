"""Streaming reader for big sessions: spike times read unit chunk by unit chunk, counts binned to the on-disk cache.

Small files stand in for a 2,000-unit recording: NWB_LDNS_BINNING_CHUNK (bytes per chunk) forces many unit chunks
and NWB_LDNS_COUNTS_BUDGET=0 forces the on-disk counts cache, so both code paths run in the default suite.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nwb_ldns.data import counts_cache, load_session
from nwb_ldns.errors import SessionContentError
from nwb_ldns.fileio import sha256_file
from nwb_ldns.testing import write_counts_session


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(counts_cache.CACHE_ENV, str(folder))
    return folder


def _on_disk(monkeypatch) -> None:
    monkeypatch.setenv(counts_cache.BUDGET_ENV, "0")


def _assert_same(a, b) -> None:
    """Two session Datasets with identical variables (counts compared as float32 values)."""
    assert set(a.data_vars) == set(b.data_vars) and a.attrs == b.attrs
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert a[name].dtype == b[name].dtype, name
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_unit_chunks_give_the_same_counts(mock_counts, monkeypatch):
    path, truth = mock_counts
    whole = load_session(path)
    monkeypatch.setenv(counts_cache.CHUNK_ENV, "200")  # ~25 spikes per read: every unit its own chunk
    chunked = load_session(path)
    _assert_same(whole, chunked)
    assert not counts_cache.is_lazy(chunked["counts"])
    np.testing.assert_array_equal(chunked["counts"].values, truth[chunked["trial"].values])


def test_on_disk_counts_equal_memory_and_read_lazily(mock_counts, cache_dir, monkeypatch):
    path, _ = mock_counts
    before = sha256_file(path)
    memory = load_session(path)
    _on_disk(monkeypatch)
    monkeypatch.setenv(counts_cache.CHUNK_ENV, "2000")  # several unit blocks in the cache
    disk = load_session(path)
    assert counts_cache.is_lazy(disk["counts"]) and not counts_cache.is_lazy(memory["counts"])
    _assert_same(memory, disk)
    assert counts_cache.stored_dtype(disk["counts"]) == np.uint8
    some = np.array([3, 0, 7])
    np.testing.assert_array_equal(disk["counts"][some].values, memory["counts"].values[some])
    train = disk.isel(trial=np.flatnonzero(disk["split"].values == "train"))
    assert counts_cache.is_lazy(train["counts"])
    np.testing.assert_array_equal(train["counts"].values,
                                  memory["counts"].values[memory["split"].values == "train"])
    (folder,) = cache_dir.iterdir()
    manifest = json.loads((folder / counts_cache.MANIFEST).read_text())
    assert manifest["shape"] == list(memory["counts"].shape) and manifest["dtype"] == "|u1"
    assert manifest["options"]["source_sha256"] == before
    assert sha256_file(path) == before  # the input is never modified


def test_cache_is_built_once_and_reused(mock_counts, cache_dir, monkeypatch):
    path, _ = mock_counts
    _on_disk(monkeypatch)
    first = load_session(path)
    (folder,) = cache_dir.iterdir()
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    built = []
    original = counts_cache.CountsWriter.__init__
    monkeypatch.setattr(counts_cache.CountsWriter, "__init__",
                        lambda self, *a, **k: (built.append(1), original(self, *a, **k))[1])
    second = load_session(path)
    assert built == [] and {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamp
    _assert_same(first, second)
    other = load_session(path, bin_width=0.02)  # other reader options: another cache
    assert built == [1] and len(list(cache_dir.iterdir())) == 2
    assert other.sizes["time"] == first.sizes["time"] // 2


@pytest.mark.parametrize("damage", ["chunk", "manifest", "missing-chunk"])
def test_damaged_cache_is_rebuilt(mock_counts, cache_dir, monkeypatch, damage):
    path, _ = mock_counts
    memory = load_session(path)
    _on_disk(monkeypatch)
    load_session(path)
    (folder,) = cache_dir.iterdir()
    chunk = sorted((folder / counts_cache.ARRAY).glob("[0-9]*"))[0]
    if damage == "chunk":
        chunk.write_bytes(b"\x00" * len(chunk.read_bytes()))
    elif damage == "manifest":
        (folder / counts_cache.MANIFEST).write_text("{not json")
    else:
        chunk.unlink()
    again = load_session(path)
    _assert_same(memory, again)
    (rebuilt,) = cache_dir.iterdir()
    assert json.loads((rebuilt / counts_cache.MANIFEST).read_text())["files"] > 0


def test_large_counts_widen_the_cache_dtype(tmp_path, cache_dir, monkeypatch):
    counts = np.zeros((6, 5, 3), dtype=np.int64)
    counts[:, 2, :] = 1
    counts[4, 1, 2] = 300  # above uint8: the build restarts with uint16
    path = tmp_path / "dense.nwb"
    write_counts_session(path, counts, 0.01)
    memory = load_session(path)
    _on_disk(monkeypatch)
    monkeypatch.setenv(counts_cache.CHUNK_ENV, "100")  # one unit per block: the overflow comes late
    disk = load_session(path)
    assert counts_cache.stored_dtype(disk["counts"]) == np.uint16
    _assert_same(memory, disk)
    assert float(disk["counts"].values.max()) == 300.0


def test_overlapping_trials_and_obs_intervals_stream_the_same(maze_session, cache_dir, monkeypatch):
    path, _ = maze_session
    with pytest.warns(UserWarning):
        memory = load_session(path, align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005)
    _on_disk(monkeypatch)
    monkeypatch.setenv(counts_cache.CHUNK_ENV, "3000")
    with pytest.warns(UserWarning):
        disk = load_session(path, align="move_onset_time", window=(-0.25, 0.45), bin_width=0.005)
    assert counts_cache.is_lazy(disk["counts"])
    _assert_same(memory, disk)


def _edited(source: Path, target: Path, times_of_unit) -> Path:
    """A copy of `source` whose spike times of each unit are replaced by times_of_unit(unit, times)."""
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        times, ends = f["units/spike_times"][:], f["units/spike_times_index"][:]
        begins = np.concatenate([[0], ends[:-1]])
        for unit, (begin, end) in enumerate(zip(begins, ends)):
            times[begin:end] = times_of_unit(unit, times[begin:end].copy())
        f["units/spike_times"][:] = times
    return target


@pytest.mark.parametrize("chunk", [None, "16"])
def test_checks_keep_their_priority_across_chunks(mock_counts, tmp_path, monkeypatch, chunk):
    """NaN beats negative beats unsorted over the whole column, whichever chunk each fault sits in."""
    path, _ = mock_counts
    if chunk:
        monkeypatch.setenv(counts_cache.CHUNK_ENV, chunk)

    def faults(unit, times):
        if unit == 0:
            times[:2] = times[1::-1] if times[0] != times[1] else times[:2] - 1e-3  # unsorted
        if unit == 1:
            times[0] = -0.25  # negative
        if unit == 2:
            times[1] = -0.5
        if unit == 4:
            times[-1] = np.nan
        return times

    ids = [100, 101, 102, 103, 104]
    nan = _edited(path, tmp_path / "nan.nwb", faults)
    with pytest.raises(SessionContentError, match=f"unit {ids[4]} has NaN or infinite spike times"):
        load_session(nan)
    negative = _edited(path, tmp_path / "neg.nwb", lambda u, t: faults(u, t) if u < 4 else t)
    with pytest.raises(SessionContentError, match=rf"unit {ids[1]} has 1 negative spike times \(and 1 other units\), "
                                                  r"the earliest -0.5 s"):
        load_session(negative)
    unsorted = _edited(path, tmp_path / "uns.nwb", lambda u, t: faults(u, t) if u == 0 else t)
    with pytest.raises(SessionContentError, match=f"unit {ids[0]} has unsorted spike times"):
        load_session(unsorted)



def test_full_cache_disk_is_one_error_and_leaves_nothing(mock_counts, cache_dir, monkeypatch):
    import errno

    from nwb_ldns.errors import OutputWriteError

    path, _ = mock_counts
    _on_disk(monkeypatch)

    def full(self, first, block):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(counts_cache.CountsWriter, "write_units", full)
    with pytest.raises(OutputWriteError, match=f"no space left.*{counts_cache.CACHE_ENV}"):
        load_session(path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # no partial cache left behind
