"""A tiny end-to-end fit: complete model directory, pickle-free loading, sampling with provenance."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

from training_fixtures import FAST, make_session
from nwb_ldns.errors import OptionError, OutputExistsError
from nwb_ldns.model_dir import LDNSModel
from nwb_ldns.train import fit

PROVENANCE = ("model_name", "model_version", "model_config", "weights_sha256", "seed", "sampler", "sampler_steps",
              "conditioning", "created", "bin_width", "training_split")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session):
    out = tmp_path_factory.mktemp("fit") / "model.ldns"
    model = fit(session, out, preset="tiny", overrides=FAST, progress=False)
    return out, model


def test_model_directory_is_complete_and_plain(trained, session):
    out, model = trained
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "autoencoder.safetensors", "denoiser.safetensors", "latent_stats.json",
            "training_log.jsonl", "checkpoints"} <= names
    assert not [p for p in out.rglob("*") if p.suffix in (".pt", ".pth", ".pkl", ".pickle", ".bin")]
    assert {p.suffix for p in out.rglob("*") if p.is_file()} <= {".json", ".jsonl", ".safetensors"}
    described = json.loads((out / "config.json").read_text())
    data = described["data"]
    assert described["config"]["preset"] == "tiny" and described["config"]["autoencoder"]["epochs"] == 3
    assert (data["n_units"], data["n_bins"], data["bin_width"]) == (8, 32, 0.01)
    assert data["unit_ids"] == list(range(100, 108))
    assert data["source"]["source_identifier"] == "test-session"
    assert data["n_val"] == 2 and "held out" in data["val_source"]  # 10 % of 20 train trials, seeded
    assert not set(data["train_trials"]) & set(data["val_trials"])
    stats = json.loads((out / "latent_stats.json").read_text())
    assert len(stats["mean"]) == len(stats["std"]) == 4 and all(s > 0 for s in stats["std"])
    records = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    ae_epochs = [r["epoch"] for r in records if r.get("stage") == "autoencoder" and "train_loss" in r]
    vals = [r for r in records if "val_poisson_nll" in r]
    assert ae_epochs == [1, 2, 3] and len(vals) == 3
    assert [r["epoch"] for r in records if r.get("stage") == "diffusion" and "train_loss" in r] == [1, 2, 3]
    assert all(np.isfinite(r["train_loss"]) for r in records if "train_loss" in r)
    start = records[0]
    assert start["event"] == "start" and start["parameters"]["autoencoder"] == sum(
        p.numel() for p in model.autoencoder.parameters())
    best = min(vals, key=lambda r: r["val_poisson_nll"])
    done = next(r for r in records if r.get("event") == "done" and r.get("stage") == "autoencoder")
    assert done["best_epoch"] == best["epoch"]


def test_load_reads_no_pickle(trained, monkeypatch):
    out, fitted = trained

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling is not allowed when loading a model")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    model = LDNSModel.load(out, device="cpu")
    for a, b in ((model.autoencoder, fitted.autoencoder), (model.denoiser, fitted.denoiser)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].cpu()) for k in sa)
    files = b"".join((out / name).read_bytes() for name in ("autoencoder.safetensors", "denoiser.safetensors"))
    assert model.weights_sha256 == hashlib.sha256(files).hexdigest()


def test_best_validation_weights_are_the_saved_autoencoder(trained, session):
    """The saved AE reproduces the logged best validation loss (so it is the best epoch's weights)."""
    from nwb_ldns.training.autoencoder import validation_losses
    from nwb_ldns.training.common import Run

    out, model = trained
    data = model.data
    positions = np.flatnonzero(np.isin(session["trial"].values, data["val_trials"]))
    counts = torch.from_numpy(session["counts"].values[positions])
    mask = torch.from_numpy(session["mask"].values[positions])
    run = Run(out, torch.device("cpu"), False, progress=False)
    value = validation_losses(model.autoencoder.cpu(), counts, mask, 8, run)["val_poisson_nll"]
    model.autoencoder.eval()
    records = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    best = min(r["val_poisson_nll"] for r in records if "val_poisson_nll" in r)
    assert value == pytest.approx(best, rel=1e-5)


def test_sample_shapes_and_provenance(trained):
    out, _ = trained
    model = LDNSModel.load(out, device="cpu")
    ds = model.sample(6, seed=3, sampler="ddim", steps=5, progress=False)
    assert ds["counts"].shape == (6, 32, 8) and ds["rates"].shape == (6, 32, 8) and ds["latents"].shape == (6, 32, 4)
    assert ds["unit"].values.tolist() == list(range(100, 108))
    assert set(ds["split"].values) == {"generated"} and bool(ds["mask"].values.all())
    counts = ds["counts"].values
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    assert (ds["rates"].values > 0).all()
    for name in PROVENANCE:
        assert name in ds.attrs, name
    assert ds.attrs["model_name"] == "LDNS" and ds.attrs["seed"] == 3
    assert ds.attrs["sampler"] == "ddim" and ds.attrs["sampler_steps"] == 5
    assert ds.attrs["weights_sha256"] == model.weights_sha256 and ds.attrs["conditioning"] == ""
    assert ds.attrs["source_identifier"] == "test-session" and ds.attrs["source_sha256"] == "ab" * 32
    assert json.loads(ds.attrs["model_config"])["config"]["preset"] == "tiny"
    assert "unit_location" in ds and ds["unit_location"].values.tolist() == ["M1"] * 8
    again = model.sample(6, seed=3, sampler="ddim", steps=5, progress=False)
    other = model.sample(6, seed=4, sampler="ddim", steps=5, progress=False)
    assert np.array_equal(again["counts"].values, counts)
    assert not np.array_equal(other["counts"].values, counts)


def test_ddpm_sampler_and_length_generalisation(trained):
    out, _ = trained
    model = LDNSModel.load(out, device="cpu")
    ds = model.sample(3, seed=0, sampler="ddpm", lengths=[40, 16, 40], batch_size=2, progress=False)
    assert ds.attrs["sampler_steps"] == 50  # all diffusion steps of this (tiny, 50-step) model
    assert ds["counts"].shape == (3, 40, 8)
    assert ds["mask"].values.sum(1).tolist() == [40, 16, 40]
    assert ds["counts"].values[1, 16:].sum() == 0 and ds["rates"].values[1, 16:].sum() == 0
    with pytest.raises(OptionError, match="lengths"):
        model.sample(3, lengths=[10, 20], progress=False)
    with pytest.raises(OptionError, match="unconditional"):
        model.sample(2, conditions=[0.5], progress=False)
    with pytest.raises(OptionError, match="ddim"):
        model.sample(2, sampler="ddpm", steps=10, progress=False)


def test_existing_output_and_bad_resume(trained, session, tmp_path):
    out, _ = trained
    with pytest.raises(OutputExistsError, match="--overwrite"):
        fit(session, out, preset="tiny", overrides=FAST, progress=False)
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="is not an nwb-ldns model directory"):
        fit(session, not_a_model, preset="tiny", overrides=FAST, progress=False, overwrite=True)
    assert (not_a_model / "keep.txt").read_text() == "precious"
    with pytest.raises(OptionError, match="not a model directory"):
        fit(session, not_a_model, preset="tiny", resume=True, progress=False)
    with pytest.raises(OptionError, match="saved config"):
        fit(session, out, overrides={**FAST, "diffusion.epochs": 9}, resume=True, progress=False)
    with pytest.raises(OptionError, match="session differs"):
        fit(make_session(n_units=9), out, resume=True, progress=False)
    with pytest.raises(OptionError, match="unknown config key"):  # a bad config never deletes the old model
        fit(session, out, preset="tiny", overrides={"autoencoder.epoch": 1}, progress=False, overwrite=True)
    assert (out / "denoiser.safetensors").is_file()
    # resuming a finished model just loads it
    assert fit(session, out, resume=True, progress=False).model_dir == out


def test_plan_counts_parameters_without_writing(session, tmp_path):
    from nwb_ldns.models import count_parameters
    from nwb_ldns.model_dir import build_networks
    from nwb_ldns.training.fit import plan

    summary = plan(session, preset="tiny", overrides={"autoencoder.epochs": 4})
    ae, dn = build_networks(summary["config"], {**summary["data"], "n_units": 8})
    assert summary["parameters"] == {"autoencoder": count_parameters(ae), "denoiser": count_parameters(dn)}
    assert summary["steps"]["autoencoder"]["total_steps"] == 4 * summary["steps"]["autoencoder"]["batches_per_epoch"]
    assert not list(tmp_path.iterdir())


def test_session_val_split_is_used(tmp_path):
    ds = make_session(with_val=True)
    model = fit(ds, tmp_path / "m", preset="tiny", overrides={**FAST, "autoencoder.epochs": 1, "diffusion.epochs": 1},
                progress=False)
    assert model.data["val_source"] == "session val split"
    assert model.data["val_trials"] == ds["trial"].values[16:18].tolist()
    assert model.data["n_train"] == 16


def test_dplr_option_fits_loads_and_samples(session, tmp_path):
    """s4_mode=dplr end to end: the extra P parameters are trained, saved, loaded back and used for sampling."""
    overrides = {**FAST, "autoencoder.epochs": 1, "diffusion.epochs": 1, "autoencoder.s4_mode": "dplr",
                 "diffusion.s4_mode": "dplr"}
    model = fit(session, tmp_path / "dplr.ldns", preset="tiny", overrides=overrides, progress=False)
    names = [n for n, _ in model.denoiser.named_parameters()] + [n for n, _ in model.autoencoder.named_parameters()]
    assert any(n.endswith("s4.P") for n in names)
    loaded = LDNSModel.load(tmp_path / "dplr.ldns", device="cpu")
    assert loaded.denoiser.blocks[0].s4.mode == "dplr" and loaded.autoencoder.blocks[0].s4.mode == "dplr"
    torch.testing.assert_close(loaded.denoiser.blocks[0].s4.P, model.denoiser.blocks[0].s4.P.cpu())
    generated = loaded.sample(3, seed=0, sampler="ddim", steps=5, progress=False)
    assert generated["counts"].shape[0] == 3 and np.isfinite(generated["counts"].values).all()


def test_length_generalisation_to_16x_the_training_length(trained, tmp_path):
    """Reference 3.6: a fixed-length model samples trials 16x longer than it was trained on (`sample --bins`);
    the long trials stay finite and keep the training firing rate instead of drifting away from it."""
    from click.testing import CliRunner

    from nwb_ldns.cli.main import cli

    out, _ = trained
    model = LDNSModel.load(out, device="cpu")
    n_bins = int(model.data["n_bins"])
    long = 16 * n_bins
    result = CliRunner().invoke(cli, ["sample", str(out), "--n", "4", "--bins", str(long), "--sampler", "ddim",
                                      "--steps", "10", "--out", str(tmp_path / "long.nwb"), "--quiet"])
    assert result.exit_code == 0, result.output
    ds = model.sample(4, seed=0, sampler="ddim", steps=10, lengths=long, progress=False)
    rates = ds["rates"].values
    assert rates.shape == (4, long, model.data["n_units"]) and np.isfinite(rates).all()
    train_mean = float(model.latent_stats["train_mean_count_per_bin"])
    segments = rates.reshape(4, 16, n_bins, -1).mean(axis=(0, 2, 3))  # mean rate of each training-length segment
    assert np.all(segments > train_mean / 3) and np.all(segments < train_mean * 3), (segments, train_mean)
