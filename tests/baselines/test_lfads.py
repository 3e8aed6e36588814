"""LFADS baseline: network shapes, the KL term, prior sampling, learning a latent rotation better than PSTH-Poisson,
resume to identical weights, a pickle-free model directory, and the CLI end to end (fit tiny -> NWB -> evaluate)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nwb_ldns.baselines import PSTHPoisson
from nwb_ldns.baselines.lfads import LFADS, LFADSNet, kl_diagonal_gaussians, ramp
from nwb_ldns.baselines.trainer import WEIGHTS
from nwb_ldns.errors import InputFileError, OptionError, OutputExistsError
from nwb_ldns.metrics import headline_statistics
from tests.baselines.sessions import rotation_session

@pytest.fixture(scope="module")
def session():
    return rotation_session()


@pytest.fixture(scope="module")
def trained(session, tmp_path_factory):
    torch.set_num_threads(1)
    return LFADS.fit(session, tmp_path_factory.mktemp("lfads") / "m", preset="tiny", overrides={"epochs": 60},
                     progress=False)


def test_network_shapes_and_variable_length_encoding():
    net = LFADSNet(n_units=5, ic_enc_dim=6, ic_dim=3, gen_dim=7, fac_dim=2, dropout=0.0, prior_var=0.1).eval()
    counts = torch.poisson(torch.full((4, 11, 5), 0.5))
    mean, var = net.encode(counts)
    assert mean.shape == var.shape == (4, 3) and bool((var > 0).all())
    log_rates, factors = net.decode(mean, 23)  # any length, also beyond the input's
    assert log_rates.shape == (4, 23, 5) and factors.shape == (4, 23, 2)
    # packed encoding: a trial's encoding ignores whatever lies after its length
    lengths = torch.tensor([11, 6, 9, 1])
    noisy = counts.clone()
    for i, n in enumerate(lengths):
        noisy[i, n:] = 99.0
    packed, _ = net.encode(noisy, lengths)
    cut = torch.stack([net.encode(counts[i:i + 1, :n])[0][0] for i, n in enumerate(lengths)])
    torch.testing.assert_close(packed, cut, rtol=1e-5, atol=1e-5)


def test_kl_term_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mean, prior_mean = rng.normal(size=(5, 4)), rng.normal(size=4)
    var, prior_var = rng.uniform(0.1, 2.0, (5, 4)), rng.uniform(0.05, 1.5, 4)
    expected = 0.5 * (np.log(prior_var / var) + (var + (mean - prior_mean) ** 2) / prior_var - 1.0)
    got = kl_diagonal_gaussians(*(torch.tensor(x) for x in (mean, var, prior_mean, prior_var)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(mean), torch.tensor(var).sqrt()),
        torch.distributions.Normal(torch.tensor(prior_mean), torch.tensor(prior_var).sqrt()))
    np.testing.assert_allclose(got.numpy(), reference.numpy(), rtol=1e-10)
    assert float(kl_diagonal_gaussians(*(torch.tensor(x) for x in (prior_mean, prior_var) * 2)).abs().max()) < 1e-12
    assert [ramp(s, 4, 2) for s in (0, 3, 7, 100)] == [0.125, 0.5, 1.0, 1.0] and ramp(0, 4, 0) == 1.0


def test_prior_is_initialised_and_sampled_as_configured(trained):
    fresh = LFADSNet(3, 4, 6, 5, 2, 0.0, prior_var=0.1)
    torch.testing.assert_close(fresh.prior()[1].detach(), torch.full((6,), 0.1))
    assert float(fresh.prior()[0].detach().abs().max()) == 0.0
    prior_mean, prior_var = (x.detach().numpy() for x in trained.net.prior())
    draws = trained.initial_conditions(20000, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(draws.mean(axis=0), prior_mean, atol=4 * np.sqrt(prior_var.max() / 20000) + 1e-6)
    np.testing.assert_allclose(draws.std(axis=0), np.sqrt(prior_var), rtol=0.03)
    again = trained.initial_conditions(20000, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(again, draws)


def test_lfads_beats_psth_on_correlations_of_a_latent_rotation(session, trained):
    real = session["counts"].values[session["split"].values == "train"]
    lfads = trained.sample(1000, seed=1)["counts"].values
    psth = PSTHPoisson.fit(session, condition=None).sample(1000, seed=1)["counts"].values
    stats = {name: headline_statistics(real, x, 0.01) for name, x in (("lfads", lfads), ("psth", psth))}
    assert stats["lfads"]["rmse_corr"] < 0.6 * stats["psth"]["rmse_corr"], stats
    assert stats["lfads"]["kl_pop_count"] < stats["psth"]["kl_pop_count"], stats
    np.testing.assert_allclose(lfads.mean(), real.mean(), rtol=0.15)


def test_samples_shapes_provenance_and_any_length(session, trained):
    ds = trained.sample(7, seed=3)
    assert ds["counts"].shape == (7, 30, 20) and ds["latents"].shape == (7, 30, 8)
    assert ds["unit"].values.tolist() == list(range(7, 27)) and set(ds["split"].values) == {"generated"}
    assert ds.attrs["model_name"] == "LFADS" and ds.attrs["source_identifier"] == "rot"
    config = json.loads(ds.attrs["model_config"])
    assert config["baseline"] == "lfads" and config["preset"] == "tiny" and config["n_train_trials"] == 240
    np.testing.assert_array_equal(ds["counts"].values, trained.sample(7, seed=3)["counts"].values)
    long = trained.sample(3, seed=0, n_bins=16 * 30)  # the generator runs past the training length
    rates = long["rates"].values
    assert rates.shape == (3, 480, 20) and np.isfinite(rates).all() and long["mask"].values.all()
    assert rates[:, -30:].mean() < 20 * rates[:, :30].mean()
    with pytest.raises(OptionError, match="--n"):
        trained.sample(0)


def test_variable_length_session_samples_training_lengths(tmp_path):
    session = rotation_session(n_trials=40, n_bins=20, n_units=6, variable=True)
    model = LFADS.fit(session, tmp_path / "m", preset="tiny", overrides={"epochs": 2}, progress=False)
    ds = model.sample(30, seed=0)
    lengths = set(session["mask"].values[session["split"].values == "train"].sum(axis=1).tolist())
    assert set(ds["mask"].values.sum(axis=1).tolist()) <= lengths
    assert not ds["counts"].values[~ds["mask"].values].any() and not ds["rates"].values[~ds["mask"].values].any()


class Stop(Exception):
    pass


def test_resume_after_a_kill_gives_the_same_weights(tmp_path):
    session = rotation_session(n_trials=60, n_bins=12, n_units=5)
    options = {"preset": "tiny", "overrides": {"epochs": 4, "checkpoint_every": 1, "batch_size": 16},
               "progress": False}
    whole = LFADS.fit(session, tmp_path / "whole", **options)

    def stop_after_two(stage, epoch):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        LFADS.fit(session, tmp_path / "cut", on_epoch_end=stop_after_two, **options)
    assert not (tmp_path / "cut" / WEIGHTS).exists()
    resumed = LFADS.fit(session, tmp_path / "cut", resume=True, progress=False)
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)
    assert (tmp_path / "whole" / WEIGHTS).read_bytes() == (tmp_path / "cut" / WEIGHTS).read_bytes()
    logged = [json.loads(x) for x in (tmp_path / "cut" / "training_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged if "epoch" in r] == [1, 2, 3, 4]
    with pytest.raises(OptionError, match="saved config"):
        LFADS.fit(session, tmp_path / "cut", resume=True, overrides={"gen_dim": 3}, progress=False)
    with pytest.raises(OptionError, match="session differs"):
        LFADS.fit(rotation_session(n_trials=60, n_bins=12, n_units=5, seed=1).assign_attrs(source_sha256="22" * 32),
                  tmp_path / "cut", resume=True, progress=False)


def test_model_directory_is_json_and_safetensors_only(trained, monkeypatch):
    files = {p.suffix for p in trained.model_dir.rglob("*") if p.is_file()}
    assert files <= {".json", ".jsonl", ".safetensors"}

    def no_pickle(*args, **kwargs):
        raise AssertionError("loading a baseline model must not unpickle")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = LFADS.load(trained.model_dir)
    np.testing.assert_array_equal(loaded.sample(4, seed=2)["counts"].values, trained.sample(4, seed=2)["counts"].values)


def test_bad_options_and_damaged_directories(session, trained, tmp_path):
    with pytest.raises(OptionError, match="valid keys: .*gen_dim"):
        LFADS.fit(session, tmp_path / "a", preset="tiny", overrides={"gen_dimm": 3})
    with pytest.raises(OptionError, match="cd_rate"):
        LFADS.fit(session, tmp_path / "a", preset="tiny", overrides={"cd_rate": "1.5"})
    with pytest.raises(OptionError, match="not a valid int"):
        LFADS.fit(session, tmp_path / "a", preset="tiny", overrides={"epochs": "two"})
    with pytest.raises(OptionError, match="unknown lfads preset"):
        LFADS.fit(session, tmp_path / "a", preset="huge")
    assert not (tmp_path / "a").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not an nwb-ldns baseline"):
        LFADS.fit(session, other, preset="tiny", overwrite=True)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        LFADS.fit(session, trained.model_dir, preset="tiny")
    with pytest.raises(OptionError, match="cannot resume"):
        LFADS.fit(session, other, resume=True)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text((trained.model_dir / "config.json").read_text())
    (damaged / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(InputFileError, match="not a valid safetensors"):
        LFADS.load(damaged)
    (damaged / WEIGHTS).unlink()
    with pytest.raises(InputFileError, match="--resume"):
        LFADS.load(damaged)


def test_cli_fits_tiny_writes_nwb_that_evaluate_scores_as_a_baseline(mock_session_path, tmp_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.cli.main import cli

    out = tmp_path / "lfads.nwb"
    result = CliRunner().invoke(cli, ["baseline", "lfads", str(mock_session_path), "--n", "12", "--out", str(out),
                                      "--preset", "tiny", "--epochs", "3", "--quiet", "--seed", "2"])
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "lfads.lfads-model"
    assert (model_dir / WEIGHTS).is_file() and str(model_dir) in result.output
    ds = load_session(out)
    assert ds.sizes["trial"] == 12 and ds.sizes["unit"] == 8
    again = CliRunner().invoke(cli, ["baseline", "lfads", str(mock_session_path), "--out", str(out), "--overwrite",
                                     "--resume", "--bins", "64", "--n", "3", "--quiet"])
    assert again.exit_code == 0, again.output
    assert load_session(out).sizes["time"] == 64
    bad = CliRunner().invoke(cli, ["baseline", "lfads", str(mock_session_path), "--out", str(tmp_path / "b.nwb"),
                                   "--set", "gen_dimm=3"])
    assert bad.exit_code == 2 and "valid keys" in bad.output
    out = tmp_path / "lfads2.nwb"
    assert CliRunner().invoke(cli, ["baseline", "lfads", str(mock_session_path), "--out", str(out),
                                    "--model-dir", str(model_dir), "--resume", "--quiet"]).exit_code == 0
    evaluated = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(out), "--json",
                                         str(tmp_path / "r.json"), "--bootstrap", "2"])
    assert evaluated.exit_code == 0, evaluated.output
    generated = json.loads((tmp_path / "r.json").read_text())["generated"]
    assert generated[0]["baseline"] is True and generated[0]["label"].startswith("LFADS")
