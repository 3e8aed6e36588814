"""Baselines: fit on the training split, sample shapes/provenance, PSTH means, LDS captures shared variability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nwb_ldns.baselines import LDSPoisson, PSTHPoisson, fit_baseline
from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.errors import OptionError, SessionContentError
from nwb_ldns.metrics import headline_statistics

SOURCE_ATTRS = {"source_path": "/data/x.nwb", "source_identifier": "abc", "source_sha256": "00" * 32,
                "source_subject": json.dumps({"subject_id": "s1", "species": "Mus musculus"})}


def _session(n_trials=40, n_bins=30, n_units=6, seed=0, shared=0.0, variable=False):
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins)
    conditions = np.array([f"c{i % 2}" for i in range(n_trials)])
    base = np.where(conditions[:, None, None] == "c0", 0.2 + 0.2 * np.sin(t / 5)[None, :, None], 0.4)
    latent = np.empty((n_trials, n_bins))  # stationary AR(1) shared latent, unit variance
    latent[:, 0] = rng.standard_normal(n_trials)
    for i in range(1, n_bins):
        latent[:, i] = 0.95 * latent[:, i - 1] + np.sqrt(1 - 0.95**2) * rng.standard_normal(n_trials)
    loading = rng.uniform(0.5, 1.0, n_units)
    rates = base * np.exp(shared * latent[:, :, None] * loading) * np.ones((1, 1, n_units))
    mask = np.ones((n_trials, n_bins), bool)
    if variable:
        mask = t[None, :] < rng.integers(n_bins // 2, n_bins + 1, n_trials)[:, None]
    counts = rng.poisson(rates) * mask[:, :, None]
    split = np.where(np.arange(n_trials) < int(0.75 * n_trials), "train", "test")
    return make_session_dataset(counts, 0.01, mask=mask, split=split, unit_ids=np.arange(n_units) + 100,
                                extra_trial_vars={"trial_condition": conditions}, attrs=SOURCE_ATTRS)


def test_psth_fit_reproduces_per_condition_means():
    session = _session()
    model = PSTHPoisson.fit(session)
    train = session.isel(trial=session["split"].values == "train")
    for c, label in enumerate(model.labels):
        rows = train["trial_condition"].values == label
        np.testing.assert_allclose(model.psths[c], train["counts"].values[rows].astype(float).mean(axis=0), rtol=1e-12)
    samples = model.sample(4000, seed=3)
    for c, label in enumerate(model.labels):
        rows = samples["trial_condition"].values == label
        mean = samples["counts"].values[rows].mean(axis=0)
        stderr = np.sqrt(model.psths[c] / rows.sum()) + 1e-9
        assert np.abs(mean - model.psths[c]).max() < 6 * stderr.max()
        np.testing.assert_allclose(samples["rates"].values[rows][0], model.psths[c], rtol=1e-6)


def test_generated_dataset_shape_and_provenance():
    session = _session()
    for model_name, model in [("PSTH-Poisson", PSTHPoisson.fit(session)), ("LDS-Poisson", LDSPoisson.fit(session))]:
        ds = model.sample(7, seed=5)
        assert ds["counts"].shape == (7, 30, 6) and set(ds["split"].values) == {"generated"}
        assert ds["unit"].values.tolist() == list(range(100, 106))
        assert ds.attrs["model_name"] == model_name and ds.attrs["sampler"] == "ancestral"
        assert ds.attrs["sampler_steps"] == 0 and ds.attrs["training_split"] == "train" and ds.attrs["seed"] == 5
        assert ds.attrs["bin_width"] == 0.01 and ds.attrs["source_identifier"] == "abc"
        assert json.loads(ds.attrs["model_config"])["n_train_trials"] == 30
        assert len(ds.attrs["weights_sha256"]) == 64
        again = model.sample(7, seed=5)
        np.testing.assert_array_equal(ds["counts"].values, again["counts"].values)
        assert ds.attrs["weights_sha256"] == again.attrs["weights_sha256"]
        assert not np.array_equal(ds["counts"].values, model.sample(7, seed=6)["counts"].values)
    other = PSTHPoisson.fit(_session(seed=1)).sample(2).attrs["weights_sha256"]
    assert other != PSTHPoisson.fit(session).sample(2).attrs["weights_sha256"]


def test_variable_length_trials_keep_training_lengths():
    session = _session(variable=True)
    lengths = set(session["mask"].values[session["split"].values == "train"].sum(axis=1).tolist())
    for model in (PSTHPoisson.fit(session), LDSPoisson.fit(session, n_latents=2)):
        ds = model.sample(50, seed=0)
        assert set(ds["mask"].values.sum(axis=1).tolist()) <= lengths
        assert not ds["counts"].values[~ds["mask"].values].any()


def test_lds_captures_shared_variability_that_psth_lacks():
    session = _session(n_trials=120, n_bins=40, n_units=8, shared=0.8, seed=2)
    train = session.isel(trial=session["split"].values == "train")
    lds = LDSPoisson.fit(session, n_latents=2)
    assert np.abs(np.linalg.eigvals(lds.A)).max() <= 0.99 + 1e-12
    real = train["counts"].values
    stats = {name: headline_statistics(real, m.sample(400, seed=1)["counts"].values, 0.01)
             for name, m in [("lds", lds), ("psth", PSTHPoisson.fit(session))]}
    assert stats["lds"]["rmse_corr_pairs"] < 0.5 * stats["psth"]["rmse_corr_pairs"]
    rates = lds.sample(400, seed=2)["rates"].values
    np.testing.assert_allclose(rates.mean(axis=(0, 1)), real.mean(axis=(0, 1)), rtol=0.25)


def test_bad_input_errors():
    session = _session()
    with pytest.raises(OptionError, match="latents"):
        LDSPoisson.fit(session, n_latents=50)
    with pytest.raises(OptionError, match="no trial column"):
        PSTHPoisson.fit(session, condition="stimulus")
    with pytest.raises(OptionError, match="unknown baseline"):
        fit_baseline("gpfa", session)
    with pytest.raises(OptionError, match="--n"):
        PSTHPoisson.fit(session).sample(0)
    no_train = session.assign(split=("trial", np.full(session.sizes["trial"], "test")))
    with pytest.raises(SessionContentError, match="training trials"):
        PSTHPoisson.fit(no_train)


def test_baseline_cli_writes_nwb_that_evaluate_reads(mock_session_path, tmp_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.cli.main import cli

    out = tmp_path / "psth.nwb"
    result = CliRunner().invoke(cli, ["baseline", "psth", str(mock_session_path), "--n", "9", "--out", str(out),
                                      "--seed", "4"])
    assert result.exit_code == 0, result.output
    ds = load_session(out)
    assert ds.sizes["trial"] == 9 and ds.sizes["unit"] == 8 and ds.attrs["bin_width"] == pytest.approx(0.01)
    again = CliRunner().invoke(cli, ["baseline", "psth", str(mock_session_path), "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    lds_out = tmp_path / "lds.nwb"
    result = CliRunner().invoke(cli, ["baseline", "lds", str(mock_session_path), "--out", str(lds_out),
                                      "--latents", "2"])
    assert result.exit_code == 0, result.output
    evaluated = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(out), str(lds_out),
                                         "--bootstrap", "2"])
    assert evaluated.exit_code == 0 and "lds.nwb" in evaluated.output and "psth.nwb" in evaluated.output
