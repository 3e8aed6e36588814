"""Issue 9 item 7: the report's one-line verdicts, memorisation both ways, readable axes and the new figures."""

from __future__ import annotations

import numpy as np
import pytest

from nwb_ldns.metrics.memorisation import memorisation_check, memorisation_verdict
from nwb_ldns.metrics.verdict import GRADE_LIMITS, grade, set_verdicts, worst_grade
from nwb_ldns.report import figures as figs

KEYS = ["kl_pop_count", "rmse_corr", "rmse_corr_pairs", "rmse_mean_isi", "rmse_std_isi", "rmse_rate_hz"]


def test_grade_thresholds():
    assert GRADE_LIMITS == (2.0, 5.0)
    assert [grade(m) for m in (1.0, 2.0, 2.01, 5.0, 5.5, 15.0)] == ["green", "green", "amber", "amber", "red", "red"]
    assert grade(None) == grade(float("nan")) == grade(float("inf")) == "n/a"
    assert worst_grade(["green", "n/a", "amber"]) == "amber" and worst_grade(["green", "red"]) == "red"
    assert worst_grade(["n/a"]) == "n/a"


def _result(floor: float, values: dict[str, dict[str, float]], verdict: dict | None = None) -> dict:
    return {"keys": KEYS, "noise_floor": {"mean": {k: floor for k in KEYS}, "std": {k: 0.0 for k in KEYS}},
            "verdict": verdict,
            "generated": [{"name": name, "label": "", "n_trials": 20, "mean": {k: v for k, v in vals.items()},
                           "full": {k: v for k, v in vals.items()}} for name, vals in values.items()]}


def test_set_verdicts_without_equal_size_verdict_use_the_half_floor():
    result = _result(0.01, {"at floor": {k: 0.01 for k in KEYS},
                            "far": {**{k: 0.01 for k in KEYS}, "rmse_corr": 0.15}})
    at_floor, far = set_verdicts(result)
    assert at_floor["multiples"]["kl_pop_count"] == pytest.approx(1.0) and at_floor["overall"] == "green"
    assert far["multiples"]["rmse_corr"] == pytest.approx(15.0)
    assert far["grades"]["rmse_corr"] == "red" and far["grades"]["kl_pop_count"] == "green"
    assert far["overall"] == "red" and "half-vs-half" in far["floor"]


def test_set_verdicts_prefer_the_equal_size_multiples():
    verdict = {"k": 10, "keys": KEYS, "sets": [{"name": "a", "multiple_of_floor": {**{k: 1.0 for k in KEYS},
                                                                                   "rmse_rate_hz": 3.0}}]}
    result = _result(1.0, {"a": {k: 100.0 for k in KEYS}}, verdict)  # the half floor would say 100x
    (a,) = set_verdicts(result)
    assert a["multiples"]["rmse_rate_hz"] == 3.0 and a["overall"] == "amber" and "10-trial" in a["floor"]


def test_verdict_summary_html_colours_and_thresholds():
    from nwb_ldns.report.html import verdict_summary

    result = _result(0.01, {"good<set>": {k: 0.01 for k in KEYS},
                            "bad": {**{k: 0.01 for k in KEYS}, "kl_pop_count": 0.15}})
    page = "\n".join(verdict_summary(result))
    lines = [line for line in page.splitlines() if 'class="verdict-line"' in line]
    assert len(lines) == 2
    assert 'data-grade="green"' in lines[0] and "good&lt;set&gt;" in lines[0]
    assert lines[1].startswith('<p class="verdict-line" data-grade="red"')
    assert 'class="chip red" data-key="kl_pop_count" data-grade="red">KL 15x<' in lines[1]
    assert "at most 2x the noise floor" in page and "more than 5x" in page


def _poisson(n: int, rates: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(rates, size=(n, *rates.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def memorisation_sets():
    t = np.arange(40)[:, None]
    rates = 0.6 * (1 + np.sin(2 * np.pi * t / 40 + np.linspace(0, 3, 10)[None, :]))  # [time, unit]
    train, heldout = _poisson(60, rates, 1), _poisson(30, rates, 2)
    return train, heldout, {"fresh": _poisson(30, rates, 3), "copies": train[:30].copy(),
                            "poor": _poisson(30, 4.0 * rates[::-1], 4)}


def test_memorisation_names_copying_and_poor_fit(memorisation_sets):
    train, heldout, sets = memorisation_sets
    kinds = {}
    for name, counts in sets.items():
        check = memorisation_check(train, counts, heldout)
        kinds[name], sentence = memorisation_verdict(check, len(counts))
        if name == "poor":
            assert check["frac_farther_than_heldout_p95"] > 0.5 and "farther" in sentence
    assert kinds == {"fresh": "ok", "copies": "copying", "poor": "poor fit"}


def test_memorisation_figure_title_names_the_finding(memorisation_sets):
    train, heldout, sets = memorisation_sets
    fig = figs.memorisation({name: memorisation_check(train, c, heldout) for name, c in sets.items()})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("fresh: no copying, no poor fit")
    assert titles[1].startswith("copies: copying") and titles[2].startswith("poor: poor fit")


def test_temporal_lags_are_in_ms():
    counts = _poisson(12, np.full((50, 8), 0.5), 0)
    fig = figs.temporal(counts, {"set": counts}, bin_width=0.005, n_lags=10)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "lag (ms)"
    assert np.max(ax.lines[0].get_xdata()) == pytest.approx(50.0)  # 10 lags of 5 ms


def test_rasters_in_seconds_sorted_by_rate_several_trials():
    rates = np.tile(np.array([0.05, 2.0, 0.5, 1.0]), (30, 1))  # unit 1 fires most, unit 0 least
    real = _poisson(8, rates, 0)
    fig = figs.rasters(real, {"set": real[::-1]}, bin_width=0.02)
    axes = np.array(fig.axes).reshape(5, 2)  # 5 trials (rows) x real + one set (columns)
    assert axes[-1, 0].get_xlabel() == "time in trial (s)"
    assert axes[0, 0].get_xlim() == pytest.approx((0.0, 0.6))  # 30 bins of 20 ms
    np.testing.assert_array_equal(figs.rate_order(real), [1, 3, 2, 0])
    ys = axes[0, 0].collections[0].get_offsets()[:, 1]
    xs = axes[0, 0].collections[0].get_offsets()[:, 0]
    top = xs[ys == 3]  # the top row is the highest-rate unit (1): its spike bins, in seconds
    np.testing.assert_allclose(np.sort(top), (np.flatnonzero(real[0, :, 1] > 0) + 0.5) * 0.02)


def test_psd_axis_spans_at_most_four_decades_below_the_peak():
    medians = [np.logspace(0, -12, 40), np.logspace(-1, -11, 40)]
    low, high = figs.psd_limits(medians)
    assert high == pytest.approx(2.0) and low == pytest.approx(1e-4)
    assert np.log10(high / low) < figs.PSD_DECADES + 0.5
    assert figs.psd_limits([np.zeros(5)]) is None


def test_floor_band_width():
    a, b = np.array([10.0, 20.0, 30.0]), np.array([11.0, 18.0, 30.0])
    assert figs.floor_width(a, b, relative=False) == pytest.approx(np.percentile([1, 2, 0], 95))
    assert figs.floor_width(a, b, relative=True) == pytest.approx(np.percentile([1 / 10.5, 2 / 19, 0], 95))
    assert np.isnan(figs.floor_width([np.nan], [1.0], relative=False))
