"""Sampling warns (GeneratedRangeWarning, attrs "sample_warnings", one CLI line) when latents leave the training range."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from training_fixtures import FAST
from nwb_ldns.errors import GeneratedRangeWarning
from nwb_ldns.model_dir import LDNSModel
from nwb_ldns.sample import range_warnings
from nwb_ldns.train import fit


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, session):
    out = tmp_path_factory.mktemp("warn") / "model.ldns"
    fit(session, out, preset="tiny", overrides=FAST, progress=False)
    return out


def _fake_sampler(scale: float):
    """A stand-in for the denoiser's sampler: standard-normal latents times `scale` (1 = the training range)."""
    def sample_latents(denoiser, schedule, shape, *, generator=None, **_):
        return scale * torch.randn(shape, generator=generator)
    return sample_latents


def _sample(model_dir, monkeypatch, scale: float):
    import nwb_ldns.models

    monkeypatch.setattr(nwb_ldns.models, "sample_latents", _fake_sampler(scale))
    model = LDNSModel.load(model_dir, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = model.sample(20, seed=0, sampler="ddim", steps=2, progress=False)
    return ds, [w for w in caught if issubclass(w.category, GeneratedRangeWarning)]


def test_diverging_latents_warn_and_are_recorded(model_dir, monkeypatch):
    ds, caught = _sample(model_dir, monkeypatch, scale=8.0)
    texts = [str(w.message) for w in caught]
    # |z| far above 1.5 x the training max (<= the tiny preset's clip 5) and every std ~8; the spike count may
    # also be off (a third warning)
    assert 2 <= len(texts) <= 3
    assert "above 1.5 x the training max" in texts[0] and "per-channel std outside [0.5, 2]" in texts[1]
    assert all("--preset auto" in t and "nwb-ldns evaluate" in t for t in texts)
    stored = json.loads(ds.attrs["sample_warnings"])
    assert stored == texts
    # evaluate shows the stored warnings in its notes
    from nwb_ldns.metrics.evaluate import evaluate
    from training_fixtures import make_session

    result = evaluate(make_session(), [ds], names=["warned"], n_resamples=1, memorisation=False)
    assert result["generated"][0]["sample_warnings"] == stored
    assert any(note.startswith("warned: sampling warned:") for note in result["notes"])


def test_training_range_latents_do_not_warn(model_dir, monkeypatch):
    ds, caught = _sample(model_dir, monkeypatch, scale=1.0)
    assert caught == [] and json.loads(ds.attrs["sample_warnings"]) == []


def test_real_tiny_model_samples_without_range_warning(model_dir):
    model = LDNSModel.load(model_dir, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = model.sample(20, seed=0, sampler="ddim", steps=10, progress=False)
    latents_std = ds["latents"].values.std()
    assert not [w for w in caught if issubclass(w.category, GeneratedRangeWarning)], latents_std
    assert json.loads(ds.attrs["sample_warnings"]) == []


def test_cli_sample_prints_one_warning_line(model_dir, monkeypatch, tmp_path):
    import nwb_ldns.models
    from nwb_ldns.cli.main import cli

    monkeypatch.setattr(nwb_ldns.models, "sample_latents", _fake_sampler(8.0))
    out = tmp_path / "synth.nwb"
    result = CliRunner().invoke(cli, ["sample", str(model_dir), "--n", "6", "--out", str(out), "--sampler", "ddim",
                                      "--steps", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 2 and "|z| =" in warned[0] and "per-channel std" in warned[1] and out.exists()
    assert "GeneratedRangeWarning" not in result.output  # no Python warning formatting


def test_range_rules():
    stats = {"standardised_abs_max": 5.0, "clip": None, "train_mean_count_per_bin": 0.5}
    assert range_warnings(stats, 7.4, [1.0, 1.2], 0.5) == []
    (high,) = range_warnings(stats, 7.6, [1.0, 1.2], 0.5)
    assert "7.6" in high and "training max 5" in high
    # a small training max is floored (samples reach |z| ~ 4.5 by chance): 1.5 x 4.5 = 6.75
    assert range_warnings({**stats, "standardised_abs_max": 3.0}, 6.7, [1.0], 0.5) == []
    (count,) = range_warnings(stats, 1.0, [1.0, 1.0], 0.9)
    assert "0.9" in count and "1.8 x the training mean 0.5" in count
    assert len(range_warnings({"clip": 5.0}, 8.0, [0.4, 1.0], np.nan)) == 2  # clip bound and a narrow channel
    assert range_warnings({"clip": None}, 100.0, [1.0], 3.0) == []  # no recorded max, no count reference
