"""Per-condition PSTH correlation (nwb_ldns.metrics.conditions): a set generated from the true per-condition rates
correlates with the real per-condition PSTHs better than a set that ignores the condition; angles fall into 8
sectors; evaluate() carries the numbers in its JSON and prints one line per set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.metrics.conditions import (
    angle_sectors,
    condition_psth,
    condition_psth_correlation,
    match_conditions,
    smoothed_psth,
)

N_BINS, N_UNITS, N_CONDITIONS, BIN = 40, 10, 4, 0.01


def _rates(seed: int = 0) -> np.ndarray:
    """[condition, time, unit]: a bump whose timing depends on the condition, unit gains fixed."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_BINS)[:, None]
    gains = rng.uniform(0.3, 1.0, N_UNITS)
    peaks = rng.uniform(5, 35, (N_CONDITIONS, N_UNITS))
    return np.stack([0.2 + gains * np.exp(-0.5 * ((t - peaks[c]) / 4.0) ** 2) for c in range(N_CONDITIONS)])


def _session(labels, rates, *, per_condition=True, split="train", seed=1, variable="trial_condition", values=None):
    rng = np.random.default_rng(seed)
    mean = rates[labels] if per_condition else np.broadcast_to(rates.mean(axis=0), (len(labels), N_BINS, N_UNITS))
    values = np.array([f"c{k}" for k in labels]) if values is None else values
    return make_session_dataset(rng.poisson(mean).astype(np.float32), BIN, split=np.full(len(labels), split),
                                extra_trial_vars={variable: values})


@pytest.fixture(scope="module")
def sets():
    rates = _rates()
    labels = np.arange(200) % N_CONDITIONS
    train = _session(labels, rates, seed=1)
    heldout = _session(np.arange(40) % N_CONDITIONS, rates, split="test", seed=2)
    faithful = _session(labels, rates, split="generated", seed=3)
    ignores = _session(labels, rates, per_condition=False, split="generated", seed=4)
    return train, heldout, faithful, ignores


def test_true_per_condition_rates_beat_a_set_that_ignores_the_condition(sets):
    train, heldout, faithful, ignores = sets
    result = condition_psth(train, heldout, [faithful, ignores])
    good, bad = result["generated"]
    assert good["variable"] == "trial_condition" and good["kind"] == "category" and good["n_conditions"] == 4
    assert sorted(good["conditions"]) == ["c0", "c1", "c2", "c3"]
    assert good["conditions"]["c0"]["n_real"] == 50 and good["conditions"]["c0"]["n_generated"] == 50
    # measured: faithful 0.99 / specific 0.98; ignoring the condition 0.57 / specific -0.003
    assert good["mean_r"] > 0.9 and good["mean_r"] > bad["mean_r"] + 0.15, (good["mean_r"], bad["mean_r"])
    assert good["mean_r_specific"] > 0.9 and abs(bad["mean_r_specific"]) < 0.3
    floor = result["heldout_real"]["trial_condition"]
    assert floor["n_conditions"] == 4 and floor["mean_r"] > bad["mean_r"]
    assert json.loads(json.dumps(result))["generated"][0]["mean_r"] == pytest.approx(good["mean_r"])


def test_identical_psths_correlate_perfectly(sets):
    train = sets[0]
    copy = train.copy()
    copy["split"] = ("trial", np.full(copy.sizes["trial"], "generated"))
    summary = condition_psth_correlation(train, copy)
    assert summary["mean_r"] == pytest.approx(1.0) and summary["mean_r_specific"] == pytest.approx(1.0)


def test_no_shared_condition_gives_none(sets):
    train, heldout, _, _ = sets
    plain = make_session_dataset(np.ones((6, N_BINS, N_UNITS), np.float32), BIN, split=np.full(6, "generated"))
    assert match_conditions(train, plain) is None
    assert condition_psth(train, heldout, [plain]) is None
    floats = _session(np.arange(6) % 2, _rates(), split="generated", values=np.linspace(0, 1, 6))
    assert match_conditions(train, floats) is None  # a float variable is no category


@pytest.mark.parametrize("degrees, expected", [
    (0, "0 deg"), (22.4, "0 deg"), (22.6, "45 deg"), (-22.4, "0 deg"), (-22.6, "315 deg"), (180, "180 deg"),
    (-180, "180 deg"), (359, "0 deg"), (95, "90 deg"), (-95, "270 deg"),
], ids=lambda v: str(v))
def test_angle_sectors(degrees, expected):
    assert angle_sectors([np.radians(degrees)]).tolist() == [expected]


def test_nan_angle_has_no_sector():
    assert angle_sectors([np.nan, 0.0]).tolist() == [None, "0 deg"]


def test_angles_are_compared_by_sector():
    """A generated angle set matches the real trials' sectors; the requested angle decides, not its exact value."""
    rates = _rates(5)
    sector_angles = np.radians(np.arange(N_CONDITIONS) * 90.0)
    labels = np.arange(120) % N_CONDITIONS
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, labels.size)
    train = _session(labels, rates, variable="trial_reach_angle", values=sector_angles[labels] + jitter, seed=6)
    generated = _session(labels, rates, split="generated", variable="trial_reach_angle",
                         values=sector_angles[labels], seed=7)
    summary = condition_psth_correlation(train, generated)
    assert summary["kind"] == "angle_sector"
    assert sorted(summary["conditions"]) == ["0 deg", "180 deg", "270 deg", "90 deg"]
    assert summary["mean_r_specific"] > 0.8


def test_psth_smoothing_keeps_uncovered_bins_nan_and_edges_unbiased():
    counts = np.ones((3, 20, 2), np.float32)
    mask = np.ones((3, 20), bool)
    mask[:, 15:] = False
    out = smoothed_psth(counts, BIN, np.array(["a", "a", "a"], dtype=object), mask)["a"]
    assert np.isnan(out[15:]).all()
    assert np.allclose(out[:15], 1.0 / BIN)  # a constant rate stays constant up to the trial edges


def test_evaluate_reports_and_prints_the_condition_psth(sets):
    from nwb_ldns.metrics.evaluate import decoding_lines, evaluate, json_ready

    train, heldout, faithful, ignores = sets
    real = train.copy()
    real = real.assign(split=("trial", np.where(np.arange(real.sizes["trial"]) < 160, "train", "test")))
    result = evaluate(real, [faithful, ignores], names=["faithful", "ignores"], n_resamples=0, memorisation=False)
    entry = json.loads(json.dumps(json_ready(result)))["condition_psth"]
    assert [g["variable"] for g in entry["generated"]] == ["trial_condition"] * 2
    lines = decoding_lines(result)
    assert lines[0].startswith("per-condition PSTH correlation")
    assert any(line.strip().startswith("faithful (trial_condition): r 0.9") for line in lines), lines
    assert any("held-out real" in line for line in lines)
