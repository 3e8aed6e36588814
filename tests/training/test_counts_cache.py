"""Training from a big session's on-disk counts cache gives the model training from memory gives.

NWB_LDNS_COUNTS_BUDGET=0 sends a small mock session's counts to the cache, so the TrialCounts path of every stage
(autoencoder batches, PSTH offset, encoding, latent statistics, the held-out check) runs in the default suite.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nwb_ldns.data import counts_cache, load_session
from nwb_ldns.fileio import sha256_file
from nwb_ldns.testing import write_mock_session
from nwb_ldns.train import fit
from nwb_ldns.training import quality
from nwb_ldns.training.trial_store import TrialCounts, masked_mean_count, masked_sum_over_trials, split_counts
from training_fixtures import FAST


@pytest.fixture(scope="module")
def mock_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cached") / "mock.nwb"
    write_mock_session(path, n_trials=24, n_bins=16, n_units=6, seed=3)
    return path


@pytest.fixture
def on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(counts_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(counts_cache.BUDGET_ENV, "0")
    monkeypatch.setenv(counts_cache.CHUNK_ENV, "1500")  # blocks of a few trials in TrialCounts.blocks


def test_trial_counts_reads_like_the_tensor(mock_file, on_disk):
    disk = load_session(mock_file)
    positions = np.array([5, 1, 9, 2, 17])
    store = split_counts(disk, positions)
    assert isinstance(store, TrialCounts) and store.shape == (5, 16, 6) and len(store) == 5
    expected = torch.from_numpy(disk["counts"].values[positions])
    assert torch.equal(store[torch.tensor([3, 0, 4])], expected[[3, 0, 4]])
    assert torch.equal(store[1:4], expected[1:4]) and torch.equal(store[2], expected[2])
    assert torch.equal(torch.from_numpy(store.numpy()), expected)
    assert len(list(store.blocks())) > 1
    mask = torch.from_numpy(disk["mask"].values[positions])
    assert torch.equal(masked_sum_over_trials(store, mask), masked_sum_over_trials(expected, mask))
    assert masked_mean_count(store, mask) == pytest.approx(masked_mean_count(expected, mask), rel=1e-6)


def test_fit_from_the_cache_equals_fit_from_memory(mock_file, tmp_path, monkeypatch):
    before = sha256_file(mock_file)
    options = {**FAST, "autoencoder.rate_offset": "psth"}
    memory = fit(load_session(mock_file), tmp_path / "memory.ldns", preset="tiny", overrides=options, progress=False)
    monkeypatch.setenv(counts_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(counts_cache.BUDGET_ENV, "0")
    monkeypatch.setattr(quality, "QUALITY_MAX_COUNTS", 3 * 16 * 6)  # the check's subset of validation trials
    session = load_session(mock_file)
    assert counts_cache.is_lazy(session["counts"])
    disk = fit(session, tmp_path / "disk.ldns", preset="tiny", overrides=options, progress=False)
    for name in ("autoencoder", "denoiser"):
        ours, theirs = getattr(memory, name).state_dict(), getattr(disk, name).state_dict()
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), name
    stats = [json.loads((m.model_dir / "latent_stats.json").read_text()) for m in (memory, disk)]
    assert stats[0]["train_mean_count_per_bin"] == pytest.approx(stats[1]["train_mean_count_per_bin"], rel=1e-6)
    assert stats[0]["mean"] == stats[1]["mean"]
    records = [[json.loads(line) for line in (m.model_dir / "training_log.jsonl").read_text().splitlines()]
               for m in (memory, disk)]
    losses = [[r["train_loss"] for r in log if "train_loss" in r] for log in records]
    assert losses[0] == losses[1] and losses[0]
    checks = [next(r for r in log if r.get("event") == "quality") for log in records]
    assert "val_trials_left_out" not in checks[0] and checks[1]["val_trials_left_out"] > 0
    assert sha256_file(mock_file) == before
