"""Training faults (issue 14): non-finite losses stop `fit` with the stage, step and option to change; counts
that no Poisson model can learn are refused before training; the training log is always strict JSON.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from hardening_helpers import FAST, FAST_SET, assert_refused, invoke, partials, snapshot


@pytest.fixture(scope="module")
def session(trained_model):
    from nwb_ldns.data import load_session

    return load_session(trained_model[0])


def _nan_from_step(module: str, function: str, first_bad: int, monkeypatch) -> None:
    """Make a stage's optimiser step return NaN from its `first_bad`-th call on (a diverging run, made exact)."""
    import importlib

    target = importlib.import_module(module)
    real = getattr(target, function)
    calls = {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= first_bad else loss
    monkeypatch.setattr(target, function, step)


def test_cli_fit_with_a_huge_learning_rate_stops_and_writes_nothing(trained_model, tmp_path):
    real = tmp_path / "real.nwb"
    shutil.copy2(trained_model[0], real)
    before = snapshot(tmp_path)
    result = invoke("fit", real, "--preset", "tiny", *FAST_SET, "--set", "autoencoder.lr=1e6",
                    "--set", "diffusion.lr=1e6", "--out", tmp_path / "model.ldns")
    assert_refused(result, "training diverged")
    assert "autoencoder" in result.stderr and "at step" in result.stderr
    assert "--set autoencoder.lr (now 1e+06)" in result.stderr
    assert snapshot(tmp_path) == before  # no model directory, nothing partial


@pytest.mark.parametrize("stage, module, function, step", [
    ("autoencoder", "nwb_ldns.training.autoencoder", "autoencoder_step", 3),
    ("diffusion", "nwb_ldns.training.diffusion", "denoiser_step", 2),
], ids=["autoencoder", "diffusion"])
def test_first_non_finite_loss_stops_the_stage(session, tmp_path, monkeypatch, stage, module, function, step):
    from nwb_ldns.errors import TrainingDivergedError
    from nwb_ldns.train import fit

    _nan_from_step(module, function, step, monkeypatch)
    with pytest.raises(TrainingDivergedError) as raised:
        fit(session, tmp_path / "model.ldns", preset="tiny", overrides=FAST, progress=False)
    message = str(raised.value)
    assert f"the {stage} training loss became nan at step {step}:" in message and "\n" not in message
    assert f"lower --set {stage}.lr (now 0.01)" in message
    assert not (tmp_path / "model.ldns").exists() and not partials(tmp_path)


def test_diverging_overwrite_keeps_the_old_model(session, trained_model, tmp_path, monkeypatch):
    from nwb_ldns.errors import TrainingDivergedError
    from nwb_ldns.train import fit

    old = tmp_path / "model.ldns"
    shutil.copytree(trained_model[1], old)
    before = snapshot(tmp_path)
    _nan_from_step("nwb_ldns.training.diffusion", "denoiser_step", 1, monkeypatch)
    with pytest.raises(TrainingDivergedError, match="diffusion"):
        fit(session, old, preset="tiny", overrides={**FAST, "seed": 9}, overwrite=True, progress=False)
    assert snapshot(tmp_path) == before  # the old model byte-identical, no replacement left beside it


def test_training_log_is_strict_json(tmp_path):
    from nwb_ldns.training.common import Run

    run = Run(tmp_path, torch.device("cpu"), bf16=False, progress=False)
    run.log({"stage": "diffusion", "train_loss": float("nan"), "best": [float("inf"), 1.5],
             "nested": {"value": float("-inf")}})

    def reject(constant: str):
        raise ValueError(f"{constant} in the training log")
    record = json.loads(run.log_path.read_text(), parse_constant=reject)
    assert record["train_loss"] is None and record["best"] == [None, 1.5] and record["nested"]["value"] is None


def _with_count(session, value: float):
    changed = session.copy(deep=True)
    counts = changed["counts"].values.astype(np.float64)
    counts[0, 0, 0] = value
    changed["counts"] = (changed["counts"].dims, counts)
    return changed


@pytest.mark.parametrize("value, fragment", [(1e30, r"counts reach 1e\+30 spikes in one bin"),
                                             (0.5, "counts contain fractional values")],
                         ids=["count-1e30", "fractional-count"])
def test_fit_refuses_counts_it_cannot_learn_up_front(session, tmp_path, monkeypatch, value, fragment):
    from nwb_ldns.errors import SessionContentError
    from nwb_ldns.train import fit
    import importlib

    fit_module = importlib.import_module("nwb_ldns.training.fit")

    def no_training(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(fit_module, "train_autoencoder", no_training)
    bad = _with_count(session, value)
    for call in (lambda: fit(bad, tmp_path / "model.ldns", preset="tiny", overrides=FAST, progress=False),
                 lambda: fit_module.plan(bad, preset="tiny")):
        with pytest.raises(SessionContentError, match=fragment) as raised:
            call()
        assert "\n" not in str(raised.value)
    assert not any(tmp_path.iterdir())
