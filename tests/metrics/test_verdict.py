"""The equal-size verdict of evaluate(): floor on k-trial subsets of other real trials, multiples, beats, labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nwb_ldns.data.schema import make_session_dataset
from nwb_ldns.metrics.evaluate import evaluate
from nwb_ldns.metrics.headline import compare, summarise
from nwb_ldns.metrics.verdict import MIN_RESAMPLES, VERDICT_KEYS, set_label, verdict_lines

N_BINS, N_UNITS = 40, 12
LDNS_ATTRS = {"model_name": "LDNS", "model_config": json.dumps({"config": {"preset": "lorenz"}}),
              "sampler": "ddim", "sampler_steps": 50}
PSTH_ATTRS = {"model_name": "PSTH-Poisson", "model_config": json.dumps({"baseline": "psth"}),
              "sampler": "ancestral", "sampler_steps": 0}


def _rates(n_trials: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(N_BINS)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (1, 1, N_UNITS))
    return 0.4 * (1 + np.sin(2 * np.pi * t / N_BINS + phase)) * np.ones((n_trials, 1, 1))


@pytest.fixture(scope="module")
def poisson():
    """A Poisson session (60 train, 10 val, 30 test), a set from the true rates, and a 3x-rate PSTH baseline."""
    rng = np.random.default_rng(1)
    split = np.array(["train"] * 60 + ["val"] * 10 + ["test"] * 30)
    real = make_session_dataset(rng.poisson(_rates(100)), 0.01, split=split)
    good = make_session_dataset(rng.poisson(_rates(40)), 0.01, split=np.full(40, "generated"), attrs=LDNS_ATTRS)
    bad = make_session_dataset(rng.poisson(3 * _rates(40)), 0.01, split=np.full(40, "generated"), attrs=PSTH_ATTRS)
    return real, good, bad


def test_floor_uses_k_trial_subsets_of_the_pool_against_the_full_reference(poisson):
    real, good, _ = poisson
    small = good.isel(trial=slice(0, 12))
    out = evaluate(real, [good, small], names=["good", "small"], split="test", n_resamples=2, memorisation=False)
    verdict = out["verdict"]
    assert verdict["pool"] == "train+val" and not verdict["fallback"]
    assert verdict["k"] == min(30, 70, 40, 12) == 12  # one k for all sets: the smallest generated set
    assert verdict["n_resamples"] == MIN_RESAMPLES  # at least 5 resamples whatever --bootstrap says
    # recompute the floor: 5 RandomState(seed) draws of 12 pool trials without replacement vs all 30 test trials
    pool = real.isel(trial=np.flatnonzero(real["split"].values != "test"))
    test = real.isel(trial=np.flatnonzero(real["split"].values == "test"))
    (full,) = summarise(test["counts"].values, 0.01)
    rng = np.random.RandomState(42)
    folds = [compare(summarise(pool["counts"].values[rng.choice(70, 12, replace=False)], 0.01)[0], full,
                     out["settings"]["maxval"], extras=True) for _ in range(5)]
    for key in VERDICT_KEYS:
        assert verdict["floor"]["mean"][key] == pytest.approx(np.mean([f[key] for f in folds]), rel=1e-10)
        assert verdict["floor"]["std"][key] == pytest.approx(np.std([f[key] for f in folds]), rel=1e-10, abs=1e-15)


def test_real_like_set_is_about_one_floor_and_the_floor_is_not_above_the_half_split(poisson):
    real, good, _ = poisson
    out = evaluate(real, [good], names=["good"], split="train", memorisation=False)
    verdict = out["verdict"]
    assert verdict["k"] == 40 and verdict["pool"] == "val+test"
    multiples = verdict["sets"][0]["multiple_of_floor"]
    assert all(np.isfinite(multiples[key]) for key in VERDICT_KEYS)
    for key in ("rmse_corr", "rmse_corr_pairs", "rmse_rate_hz", "rmse_std_isi"):
        assert 0.5 < multiples[key] < 2.0, (key, multiples[key])
    # 40 other real trials vs all 60 is closer than 30 vs a bootstrap of the other 30 (the half-split floor)
    assert verdict["floor"]["mean"]["rmse_rate_hz"] < out["noise_floor"]["mean"]["rmse_rate_hz"]
    assert verdict["floor"]["mean"]["rmse_corr"] < out["noise_floor"]["mean"]["rmse_corr"]


def test_true_rates_beat_a_badly_wrong_baseline(poisson):
    real, good, bad = poisson
    out = evaluate(real, [good, bad], names=["good.nwb", "psth.nwb"], split="test", memorisation=False)
    good_v, bad_v = out["verdict"]["sets"]
    assert (good_v["baseline"], bad_v["baseline"]) == (False, True)  # model_name PSTH-Poisson: a baseline
    assert good_v["beats"]["psth.nwb"]["kl_pop_count"] and good_v["beats"]["psth.nwb"]["rmse_rate_hz"]
    assert not any(good_v["loses_to"]["psth.nwb"].values())
    assert bad_v["beats"] == {}  # nothing else is a baseline
    assert bad_v["multiple_of_floor"]["rmse_rate_hz"] > 5
    assert out["generated"][0]["label"] == "LDNS lorenz ddim-50" and out["generated"][1]["label"] == "PSTH-Poisson"
    lines = verdict_lines(out)
    row = next(line for line in lines if line.startswith("LDNS lorenz ddim-50 (good.nwb)"))
    assert "floor" in row and row.endswith("beats PSTH-Poisson on KL, corr")
    bad_row = next(line for line in lines if line.startswith("PSTH-Poisson (psth.nwb)"))
    assert bad_row.rstrip().endswith("-")
    # an explicit baseline list marks an LDNS set as a baseline; the true rates then do not "beat" themselves
    twin = evaluate(real, [good, good], names=["a", "b"], baselines=["b"], split="test", memorisation=False)
    a, b = twin["verdict"]["sets"]
    assert b["baseline"] and not a["baseline"] and not any(a["beats"]["b"].values())
    with pytest.raises(Exception, match="not among the generated sets"):
        evaluate(real, [good], names=["a"], baselines=["nope"], memorisation=False)


def test_fallback_to_disjoint_halves_without_other_real_trials(poisson):
    _, good, _ = poisson
    rng = np.random.default_rng(3)
    real = make_session_dataset(rng.poisson(_rates(30)), 0.01, split=np.full(30, "train"))
    out = evaluate(real, [good], names=["good"], n_resamples=1, memorisation=False)
    verdict = out["verdict"]
    assert verdict["fallback"] and verdict["k"] == 15 and "halves" in verdict["pool"]
    assert any("disjoint halves" in note for note in out["notes"])
    assert all(np.isfinite(v) for v in verdict["floor"]["mean"].values())


def test_labels_from_provenance_attrs():
    assert set_label(LDNS_ATTRS) == "LDNS lorenz ddim-50"
    assert set_label({**LDNS_ATTRS, "model_config": json.dumps({"preset": "tiny"}), "sampler": "ddpm",
                      "sampler_steps": 1000}) == "LDNS tiny ddpm-1000"
    assert set_label(PSTH_ATTRS) == "PSTH-Poisson"
    assert set_label({"model_name": "LDS-Poisson", "model_config": json.dumps({"baseline": "lds"}),
                      "sampler": "ancestral", "sampler_steps": 0}) == "LDS-Poisson"
    assert set_label({}, "synth.nwb") == "synth.nwb"


def test_report_verdict_table_is_coloured(poisson):
    from nwb_ldns.report.html import render

    real, good, bad = poisson
    out = evaluate(real, [good, bad], names=["good.nwb", "psth.nwb"], split="test", memorisation=False)
    page = render(out, [])
    section = page[page.index("<h2>Verdict details"):page.index("Agreement with the data")]
    good_row = section[section.index("good.nwb"):section.index("</tr>", section.index("good.nwb"))]
    bad_row = section[section.index("psth.nwb)"):section.index("</tr>", section.index("psth.nwb)"))]
    assert 'class="red"' in bad_row and "beats PSTH-Poisson on KL, corr" in good_row
    rate_multiple = out["verdict"]["sets"][0]["multiple_of_floor"]["rmse_rate_hz"]
    expected = "green" if rate_multiple <= 2 else "amber" if rate_multiple <= 5 else "red"  # the verdict row's
    cells = good_row.split("<td")[1:-1]  # the multiples, in VERDICT_KEYS order (row starts inside the name)
    assert len(cells) == len(VERDICT_KEYS) and f'class="{expected}"' in cells[VERDICT_KEYS.index("rmse_rate_hz")]
