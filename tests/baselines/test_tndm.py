"""TNDM baseline: shapes, the behaviour decoder reading the relevant factors only, learning a latent rotation (and
the behaviour it drives) better than PSTH-Poisson, and the CLI end to end (fit tiny -> NWB -> evaluate), including
the one-line error for a session without behaviour."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pynwb
import pytest
import torch
from click.testing import CliRunner

from nwb_ldns.baselines import PSTHPoisson
from nwb_ldns.baselines.tndm import TNDM, TNDMNet, behaviour_mse, loss, PRESETS
from nwb_ldns.baselines.trainer import WEIGHTS
from nwb_ldns.errors import SessionContentError
from nwb_ldns.metrics import headline_statistics
from tests.baselines.sessions import rotation_session


@pytest.fixture(scope="module")
def session():
    return rotation_session(behavior=True)


@pytest.fixture(scope="module")
def trained(session, tmp_path_factory):
    torch.set_num_threads(1)
    return TNDM.fit(session, tmp_path_factory.mktemp("tndm") / "m", preset="tiny", overrides={"epochs": 35},
                    progress=False)


def _net() -> TNDMNet:
    return TNDMNet(n_units=5, n_behavior=2, encoded_dim=6, rel_factors=3, irr_factors=4, dropout=0.0, prior_var=0.1)


def test_network_shapes_and_reference_preset():
    net = _net().eval()
    counts = torch.poisson(torch.full((4, 11, 5), 0.5))
    (mean_r, var_r), (mean_i, var_i) = net.encode(counts)
    assert mean_r.shape == var_r.shape == mean_i.shape == var_i.shape == (4, 6) and bool((var_r > 0).all())
    log_rates, rel, irr = net.decode(mean_r, mean_i, 23)  # any length
    assert log_rates.shape == (4, 23, 5) and rel.shape == (4, 23, 3) and irr.shape == (4, 23, 4)
    assert net.decode_behavior(rel).shape == (4, 23, 2)
    reference = PRESETS["tndm"]  # ldns-reference.md section 8
    assert (reference["encoded_dim"], reference["rel_factors"], reference["irr_factors"]) == (64, 5, 5)
    assert (reference["dropout"], reference["lr"], reference["batch_size"], reference["behavior_weight"]) == (
        0.15, 1e-2, 128, 0.2)


def test_behaviour_loss_reaches_only_the_relevant_branch():
    torch.manual_seed(0)
    net = _net().train()
    counts = torch.poisson(torch.full((6, 9, 5), 0.7))
    behaviour = torch.randn(6, 9, 2)
    (mean_r, var_r), (mean_i, var_i) = net.encode(counts)
    ic_r = mean_r + var_r.sqrt() * torch.randn_like(mean_r)
    ic_i = mean_i + var_i.sqrt() * torch.randn_like(mean_i)
    _, rel, _ = net.decode(ic_r, ic_i, 9)
    behaviour_mse(net, rel, behaviour, torch.ones(6, 9, dtype=torch.bool)).backward()
    irrelevant = [p.grad for p in net.irrelevant.parameters()]
    assert all(g is None or float(g.abs().max()) == 0.0 for g in irrelevant)
    assert float(net.relevant.generator.weight_hh_l0.grad.abs().max()) > 0  # the test can fail
    assert float(net.encoder.weight_ih_l0.grad.abs().max()) > 0
    # the full loss does train the irrelevant branch (through the spikes)
    net.zero_grad()
    batch = {"counts": counts, "mask": torch.ones(6, 9, dtype=torch.bool), "behavior": behaviour,
             "behavior_mask": torch.ones(6, 9, dtype=torch.bool)}
    total, parts = loss(net, batch, PRESETS["tiny"], 0, 1, True)
    total.backward()
    assert float(net.irrelevant.generator.weight_hh_l0.grad.abs().max()) > 0
    assert set(parts) == {"recon", "behavior", "kl", "l2"}


def test_tndm_beats_psth_on_correlations_and_decodes_the_behaviour(session, trained):
    train = session.isel(trial=np.flatnonzero(session["split"].values == "train"))
    real = train["counts"].values
    tndm = trained.sample(1000, seed=1)["counts"].values
    psth = PSTHPoisson.fit(session, condition=None).sample(1000, seed=1)["counts"].values
    stats = {name: headline_statistics(real, x, 0.01) for name, x in (("tndm", tndm), ("psth", psth))}
    assert stats["tndm"]["rmse_corr"] < 0.6 * stats["psth"]["rmse_corr"], stats
    np.testing.assert_allclose(tndm.mean(), real.mean(), rtol=0.2)
    truth = train["behavior"].values.astype(np.float64)
    decoded = trained.decode_trials(train)
    r2 = 1 - ((decoded - truth) ** 2).sum() / ((truth - truth.mean(axis=(0, 1))) ** 2).sum()
    assert r2 > 0.5, r2


def test_samples_carry_decoded_behaviour_and_provenance(session, trained):
    ds = trained.sample(7, seed=3)
    assert ds["counts"].shape == (7, 30, 20) and ds["latents"].shape == (7, 30, 10)
    assert ds["behavior"].shape == (7, 30, 2) and ds["behavior_dim"].values.tolist() == ["x", "y"]
    assert ds.attrs["model_name"] == "TNDM" and ds.attrs["source_identifier"] == "rot"
    config = json.loads(ds.attrs["model_config"])
    assert config["baseline"] == "tndm" and config["preset"] == "tiny" and config["behavior_dims"] == ["x", "y"]
    np.testing.assert_array_equal(ds["counts"].values, trained.sample(7, seed=3)["counts"].values)
    # decoded behaviour is in the session's units: its spread is that of the real behaviour, not of z-scores
    real_std = session["behavior"].values.std()
    assert 0.3 * real_std < float(trained.sample(500, seed=0)["behavior"].values.std()) < 2 * real_std
    assert trained.sample(2, seed=0, n_bins=90)["behavior"].shape == (2, 90, 2)
    loaded = TNDM.load(trained.model_dir)
    np.testing.assert_array_equal(loaded.sample(4, seed=2)["behavior"].values,
                                  trained.sample(4, seed=2)["behavior"].values)


def test_session_without_behaviour_is_one_error(tmp_path):
    with pytest.raises(SessionContentError, match="--behavior"):
        TNDM.fit(rotation_session(n_trials=20, n_bins=8, n_units=4), tmp_path / "m", preset="tiny")
    assert not (tmp_path / "m").exists()


def test_cli_tndm_end_to_end_and_missing_behaviour(mock_session_path, tmp_path):
    from nwb_ldns.data import load_session
    from nwb_ldns.testing import write_mc_maze_like
    from nwb_ldns.cli.main import cli

    maze = tmp_path / "maze.nwb"
    write_mc_maze_like(maze, n_trials=40, n_early_onset=0, seed=3)
    out = tmp_path / "tndm.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(cli, ["baseline", "tndm", str(maze), "--recipe", "mc_maze", "--n", "6", "--out",
                                          str(out), "--preset", "tiny", "--epochs", "2", "--quiet"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "tndm.tndm-model" / WEIGHTS).is_file()
        ds = load_session(out, behavior="processing/behavior/conditioning_behavior")  # the decoded behaviour
        with pynwb.NWBHDF5IO(str(out), "r") as io:  # the file says the behaviour was decoded, not conditioned on
            series = io.read().processing["behavior"]["conditioning_behavior"]
            assert series.description.startswith("The behaviour the model decoded")
        assert ds.sizes["trial"] == 6 and ds["behavior"].shape[2] == 2 and np.isfinite(ds["behavior"].values).all()
        evaluated = CliRunner().invoke(cli, ["evaluate", str(maze), str(out), "--recipe", "mc_maze", "--json",
                                             str(tmp_path / "r.json"), "--bootstrap", "2"])
    assert evaluated.exit_code == 0, evaluated.output
    entry = json.loads((tmp_path / "r.json").read_text())["generated"][0]
    assert entry["baseline"] is True and entry["label"].startswith("TNDM")
    bad = CliRunner().invoke(cli, ["baseline", "tndm", str(mock_session_path), "--out", str(tmp_path / "b.nwb"),
                                   "--preset", "tiny", "--epochs", "1", "--quiet"])
    assert bad.exit_code == 2 and "--behavior" in bad.output and "Traceback" not in bad.output, bad.output
    assert not (tmp_path / "b.nwb").exists() and not (tmp_path / "b.tndm-model").exists()


def test_both_initial_conditions_are_drawn_from_their_priors(trained):
    """Sampling draws the relevant and the irrelevant ICs from their own learned priors (mean and std)."""
    rel, irr = trained.initial_conditions(20000, torch.Generator().manual_seed(0))
    for draws, branch in ((rel, trained.net.relevant), (irr, trained.net.irrelevant)):
        prior_mean, prior_var = (x.detach().numpy() for x in branch.prior())
        draws = draws.numpy()
        np.testing.assert_allclose(draws.mean(axis=0), prior_mean, atol=4 * np.sqrt(prior_var.max() / 20000) + 1e-6)
        np.testing.assert_allclose(draws.std(axis=0), np.sqrt(prior_var), rtol=0.03)
    assert not np.allclose(rel.numpy()[:, :2], irr.numpy()[:, :2])  # two independent draws, not one reused
