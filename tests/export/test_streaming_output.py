"""Streamed sample output (issue 11, big outputs): batches spilled beside the output, the file written block by block.

The streamed file must hold what the in-memory writer writes (same spike times, trials, rates, latents,
provenance), leave no spill behind, not depend on the writer's block sizes, and hold far less than the whole
arrays in memory while writing.
"""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import h5py
import numpy as np
import pynwb
import pytest
import torch

from nwb_ldns.errors import GeneratedRangeWarning
from nwb_ldns.export import synthetic, write_synthetic
from nwb_ldns.export import chunks
from nwb_ldns.export.spill import Spill, SpillSource
from nwb_ldns.export.testing import make_generated_dataset

FAST = {"autoencoder.epochs": 2, "autoencoder.batch_size": 8, "diffusion.epochs": 2, "diffusion.batch_size": 8,
        "diffusion.num_steps": 20}
OPTIONS = {"seed": 3, "sampler": "ddim", "steps": 2, "batch_size": 7, "progress": False}
IGNORED = {"identifier", "file_create_date", "general/ldns_provenance"}  # differ between any two writes


@pytest.fixture(scope="module")
def model(tmp_path_factory, mock_session_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.train import fit

    folder = tmp_path_factory.mktemp("model") / "model.ldns"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_session(mock_session_path), folder, preset="tiny", overrides=FAST, progress=False)
        yield LDNSModel.load(folder, device="cpu")
    finally:
        torch.set_num_threads(previous)


def _contents(path: Path) -> dict[str, object]:
    """Every dataset's values and every attribute, except those that differ between any two writes."""
    found: dict[str, object] = {}

    def visit(name, obj):
        if any(name == p or name.startswith(p + "/") for p in IGNORED):
            return
        attrs = {k: str(v) for k, v in obj.attrs.items() if k != "object_id"}
        found[name] = (attrs, obj[()].tolist() if isinstance(obj, h5py.Dataset) and obj.dtype.kind != "O"
                       else [str(v) for v in np.ravel(obj[()])] if isinstance(obj, h5py.Dataset) else None)

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return found


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratedRangeWarning)
        return function(*args, **kwargs)


def test_streamed_file_equals_the_in_memory_file(model, tmp_path):
    from nwb_ldns.sample import sample_to_nwb

    in_memory = _quiet(model.sample, 23, **OPTIONS)
    write_synthetic(in_memory, tmp_path / "memory.nwb")
    summary = _quiet(sample_to_nwb, model, 23, tmp_path / "streamed.nwb", **OPTIONS)
    assert summary.n_spikes == int(in_memory["counts"].sum()) > 0
    assert _contents(tmp_path / "streamed.nwb") == _contents(tmp_path / "memory.nwb")
    nwb = pynwb.read_nwb(str(tmp_path / "streamed.nwb"))
    assert len(nwb.trials) == 23 and len(nwb.units) == in_memory.sizes["unit"]
    assert np.allclose(nwb.processing["ecephys"]["generated_rates"].data[:],
                       in_memory["rates"].values[in_memory["mask"].values])
    assert pynwb.validate(path=str(tmp_path / "streamed.nwb")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.nwb", "streamed.nwb"]  # no spill left


def test_spill_lives_in_the_partial_folder_and_goes_with_a_failure(model, tmp_path, monkeypatch):
    """The spill files are inside the output's .partial folder while writing; a failed write removes them."""
    from nwb_ldns import sample
    from nwb_ldns.sample import sample_to_nwb

    seen = []
    spill = sample.spill_samples

    def spill_then_fail(model_, plan, folder, progress=True):
        source = spill(model_, plan, folder, progress)
        seen.append(sorted(p.name for p in folder.iterdir()))
        assert folder.parent.name.endswith(".partial") and folder.parent.parent == tmp_path
        raise KeyboardInterrupt  # Ctrl-C after the spill, before the write

    monkeypatch.setattr(sample, "spill_samples", spill_then_fail)
    with pytest.raises(KeyboardInterrupt):
        _quiet(sample_to_nwb, model, 5, tmp_path / "out.nwb", **OPTIONS)
    assert seen == [["counts.u8", "latents.f32", "rates.f32"]]
    assert list(tmp_path.iterdir()) == []


def test_zarr_backend_streams_too(model, tmp_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.sample import sample_to_nwb

    in_memory = _quiet(model.sample, 6, **OPTIONS)
    _quiet(sample_to_nwb, model, 6, tmp_path / "s.nwb.zarr", backend="zarr", **OPTIONS)
    session = load_session(tmp_path / "s.nwb.zarr")
    order = np.argsort(session["trial"].values)
    assert np.array_equal(session["counts"].values[order], in_memory["counts"].values)


def _spilled(ds, folder: Path, batch: int) -> SpillSource:
    """A generated Dataset spilled batch by batch, as `sample` spills the sampler's batches."""
    from nwb_ldns.export.source import DatasetSource

    memory = DatasetSource(ds)
    series = {name: int(ds[name].shape[-1]) for name in ("rates", "latents")}
    spill = Spill(folder, memory.mask, ds.sizes["unit"], series)
    for t0 in range(0, ds.sizes["trial"], batch):
        idx = np.arange(t0, min(t0 + batch, ds.sizes["trial"]))
        spill.add(idx, ds["counts"].values[idx], {name: ds[name].values[idx] for name in series})
    return SpillSource(memory.meta, spill)


def test_block_sizes_do_not_change_the_file(tmp_path, monkeypatch):
    """Many small writer blocks (units one by one in trial blocks, a few rows per write) give the same file."""
    ds = make_generated_dataset(n_trials=40, n_bins=24, n_units=9, variable_length=True, rate=1.5)
    ds["counts"][3, 2, 4] = 300  # above the uint8 spill: kept exactly
    folder = tmp_path / "spill"
    folder.mkdir()
    write_synthetic(ds, tmp_path / "one.nwb")
    monkeypatch.setattr(synthetic, "SPIKE_BLOCK_CELLS", 50)
    monkeypatch.setattr(synthetic, "SERIES_BLOCK_CELLS", 60)
    monkeypatch.setattr(chunks, "TARGET_WRITE_BYTES", 64)
    monkeypatch.setattr(chunks, "TARGET_CHUNK_BYTES", 64)
    source = _spilled(ds, folder, batch=3)
    write_synthetic(source, tmp_path / "many.nwb")
    source.close()
    one, many = _contents(tmp_path / "one.nwb"), _contents(tmp_path / "many.nwb")
    assert one == many
    times = np.asarray(pynwb.read_nwb(str(tmp_path / "many.nwb")).units["spike_times"].target.data[:])
    assert len(times) == int(ds["counts"].values[ds["mask"].values].sum())


def test_write_memory_is_bounded_by_the_blocks(tmp_path, monkeypatch):
    """Writing 1,500 trials x 40 bins x 64 units from a spill allocates a small fraction of the whole arrays."""
    ds = make_generated_dataset(n_trials=1500, n_bins=40, n_units=64, rate=1.0)
    whole = ds["counts"].nbytes + ds["rates"].nbytes  # float32 counts + rates: ~31 MB; spike times ~30 MB more
    folder = tmp_path / "spill"
    folder.mkdir()
    source = _spilled(ds, folder, batch=100)
    del ds
    monkeypatch.setattr(synthetic, "SPIKE_BLOCK_CELLS", 1 << 15)
    monkeypatch.setattr(synthetic, "SERIES_BLOCK_CELLS", 1 << 15)
    monkeypatch.setattr(chunks, "TARGET_WRITE_BYTES", 1 << 18)  # the blocks are the bound, scaled to this test
    write_synthetic(make_generated_dataset(n_trials=2), tmp_path / "warm-up.nwb")  # one-time imports and specs
    tracemalloc.start()
    try:
        write_synthetic(source, tmp_path / "big.nwb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        source.close()
    # per-trial metadata (the trials table's columns, ~0.1 MiB here) comes on top of the blocks
    assert peak < whole / 6, f"the write allocated {peak / 2**20:.1f} MiB at its peak ({whole / 2**20:.1f} MiB in all)"
    nwb = pynwb.read_nwb(str(tmp_path / "big.nwb"))
    assert len(nwb.trials) == 1500 and len(nwb.units) == 64
