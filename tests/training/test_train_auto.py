"""The `auto` preset (the default), the PSTH rate offset, early stopping, and fit's held-out check against a PSTH."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training_fixtures import FAST, make_session
from nwb_ldns.config import AUTO_AE_STEPS, DEFAULT_PRESET, auto_overrides, resolve_config
from nwb_ldns.errors import OptionError
from nwb_ldns.model_dir import LDNSModel
from nwb_ldns.models import AutoEncoder
from nwb_ldns.train import fit
from nwb_ldns.training.fit import plan
from nwb_ldns.training.quality import train_psth


def _log(model_dir) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text().splitlines() if line.strip()]


def test_auto_is_the_default_and_is_sized_from_the_session():
    small = make_session(n_trials=40, n_bins=24, n_units=12, with_val=True)
    summary = plan(small)
    config = summary["config"]
    assert DEFAULT_PRESET == "auto" and config["preset"] == "auto"
    n_train = summary["data"]["n_train"]
    assert config["autoencoder"]["batch_size"] == max(8, n_train // 4)
    assert config["autoencoder"]["rate_offset"] == "psth" and config["autoencoder"]["patience"] > 0
    # budgets are in optimiser steps: fewer trials -> more epochs, about the same number of steps
    assert summary["steps"]["autoencoder"]["total_steps"] >= AUTO_AE_STEPS
    big = auto_overrides(n_train=2000, n_bins=140, n_units=182)
    few = auto_overrides(n_train=100, n_bins=140, n_units=182)
    assert big["autoencoder.batch_size"] > few["autoencoder.batch_size"]
    assert big["autoencoder.epochs"] < few["autoencoder.epochs"]
    assert auto_overrides(n_train=100, n_bins=20, n_units=200)["autoencoder.hidden"] == 128
    assert auto_overrides(n_train=100, n_bins=20, n_units=30, variable_length=True)["autoencoder.rate_offset"] == "off"


def test_explicit_overrides_win_over_the_auto_sizing_and_resume_keeps_the_config():
    shape = {"n_train": 100, "n_bins": 20, "n_units": 30}
    config = resolve_config("auto", {"autoencoder.batch_size": 7}, shape=shape)
    assert config["autoencoder"]["batch_size"] == 7
    assert config["autoencoder"]["epochs"] == auto_overrides(**shape)["autoencoder.epochs"]
    # a saved auto config resolves to itself without the shape (what --resume does)
    saved = {k: v for k, v in __import__("nwb_ldns.config", fromlist=["flatten"]).flatten(config).items()
             if k != "preset"}
    assert resolve_config("auto", saved) == config


def test_patience_needs_validation():
    with pytest.raises(OptionError, match="val_every"):
        resolve_config("tiny", {"diffusion.patience": 3})
    with pytest.raises(OptionError, match="rate_offset"):
        resolve_config("tiny", {"autoencoder.rate_offset": "mean"})


def test_rate_offset_is_the_inverse_softplus_of_the_psth():
    torch.manual_seed(0)
    ae = AutoEncoder(5, hidden=8, latent=2, n_blocks=1, d_state=8, offset_bins=6)
    psth = torch.rand(6, 5) * 0.5 + 1e-3
    ae.set_rate_offset(psth)
    torch.nn.init.zeros_(ae.decoder_out.weight)
    torch.nn.init.zeros_(ae.decoder_out.bias)
    rates = ae.decode(torch.randn(3, 6, 2))
    assert torch.allclose(rates, psth.expand(3, 6, 5), rtol=1e-4, atol=1e-6)
    assert torch.allclose(ae.decode(torch.randn(1, 4, 2))[0], psth[:4], rtol=1e-4, atol=1e-6)  # shorter prefix
    with pytest.raises(ValueError, match="6 bins"):
        ae.decode(torch.randn(1, 7, 2))
    with pytest.raises(ValueError, match="without a rate offset"):
        AutoEncoder(5, hidden=8, latent=2, n_blocks=1, d_state=8).set_rate_offset(psth)


def test_train_psth_smoothing_keeps_the_mean_and_has_no_edge_dip():
    counts = torch.ones(4, 10, 3)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[0, 5:] = False
    counts[0, 5:] = 0
    assert torch.allclose(train_psth(counts, mask), torch.ones(10, 3))
    assert torch.allclose(train_psth(counts, mask, smoothing_bins=2.0), torch.ones(10, 3))
    spike = torch.zeros(1, 11, 1)
    spike[0, 5, 0] = 1.0
    smoothed = train_psth(spike, torch.ones(1, 11, dtype=torch.bool), smoothing_bins=1.0)[:, 0]
    assert smoothed.argmax() == 5 and 0 < smoothed[5] < 1 and torch.isclose(smoothed.sum(), torch.tensor(1.0), atol=0.02)


@pytest.fixture(scope="module")
def auto_fit(tmp_path_factory):
    session = make_session(n_trials=40, n_bins=24, n_units=8, with_val=True, seed=3)
    out = tmp_path_factory.mktemp("auto") / "auto.ldns"
    overrides = {"autoencoder.epochs": 30, "autoencoder.patience": 2, "autoencoder.val_every": 1,
                 "diffusion.epochs": 6, "diffusion.val_every": 1, "diffusion.patience": 1, "diffusion.num_steps": 50,
                 "diffusion.hidden": 16, "autoencoder.hidden": 16}
    model = fit(session, out, overrides=overrides, progress=False)
    return session, out, model


def test_auto_fit_stores_the_psth_offset_and_reports_the_held_out_check(auto_fit):
    session, out, model = auto_fit
    assert model.config["preset"] == "auto"
    offset = model.autoencoder.rate_offset
    assert offset is not None and offset.shape == (24, 8)
    reloaded = LDNSModel.load(out)  # the offset is a buffer in autoencoder.safetensors
    assert torch.equal(reloaded.autoencoder.rate_offset.cpu(), offset.cpu())
    quality = [r for r in _log(out) if r.get("event") == "quality"]
    assert len(quality) == 1
    numbers = quality[0]
    for key in ("val_prediction_nll_autoencoder", "val_prediction_nll_psth", "kl_ldns", "kl_psth", "corr_ldns",
                "corr_psth"):
        assert np.isfinite(numbers[key]), key
    generated = model.sample(4, seed=1, sampler="ddim", steps=10, progress=False)
    assert generated["counts"].shape == (4, 24, 8)


def test_early_stopping_ends_the_stages_and_is_logged(auto_fit):
    _, out, _ = auto_fit
    log = _log(out)
    stops = [r for r in log if r.get("event") == "early_stop"]
    ae_epochs = [r["epoch"] for r in log if r.get("stage") == "autoencoder" and "train_loss" in r]
    ae_done = next(r for r in log if r.get("stage") == "autoencoder" and r.get("event") == "done")
    if ae_done["early_stopped"]:
        assert max(ae_epochs) < 30 and any(r["stage"] == "autoencoder" for r in stops)
        assert ae_done["best_epoch"] <= max(ae_epochs)
    else:
        assert max(ae_epochs) == 30
    dn_done = next(r for r in log if r.get("stage") == "diffusion" and r.get("event") == "done")
    assert "best_val_denoising_loss" in dn_done and np.isfinite(dn_done["best_val_denoising_loss"])
    val_losses = [r["val_denoising_loss"] for r in log if "val_denoising_loss" in r]
    assert dn_done["best_val_denoising_loss"] == pytest.approx(min(val_losses))


def test_an_early_stopped_run_resumes_to_the_same_weights(tmp_path):
    session = make_session(n_trials=24, n_bins=16, n_units=6, with_val=True, seed=5)
    overrides = {**FAST, "autoencoder.epochs": 12, "autoencoder.patience": 1, "autoencoder.lr": 0.05,
                 "diffusion.val_every": 1, "diffusion.patience": 1}
    whole = fit(session, tmp_path / "whole", preset="tiny", overrides=overrides, progress=False)

    class Stop(Exception):
        pass

    def stop_in_diffusion(stage, epoch):
        if stage == "diffusion" and epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(session, tmp_path / "cut", preset="tiny", overrides=overrides, progress=False,
            on_epoch_end=stop_in_diffusion)
    resumed = fit(session, tmp_path / "cut", resume=True, progress=False)
    for a, b in ((whole.autoencoder, resumed.autoencoder), (whole.denoiser, resumed.denoiser)):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x.cpu(), y.cpu()), name
