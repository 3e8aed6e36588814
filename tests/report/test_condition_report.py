"""The report's conditioning figures (issue 13 item 4) and the ISI distribution figure (spike-history acceptance).

Built from small sessions made in code (no model is fitted): units cosine-tuned to a 2-d reach velocity whose
direction is the trial's reach angle, 5 ms bins, 64 bins so the MC_Maze angle bin (50) exists. The real trials
have a refractory period (at most one spike per bin and none in the bin after a spike); the generated ones are
Poisson, as samples without spike history are.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nwb_ldns.data.schema import make_session_dataset

BIN, N_BINS, N_UNITS = 0.005, 64, 12


def _velocity(angles: np.ndarray) -> np.ndarray:
    speed = 0.3 * np.exp(-0.5 * ((np.arange(N_BINS) - 50) / 8.0) ** 2)  # m/s, peaking at the angle bin
    return np.stack([np.cos(angles)[:, None] * speed, np.sin(angles)[:, None] * speed], axis=-1)


def _counts(velocity: np.ndarray, seed: int, refractory: bool) -> np.ndarray:
    preferred = np.linspace(0, 2 * np.pi, N_UNITS, endpoint=False)
    drive = velocity[..., :1] * np.cos(preferred) + velocity[..., 1:] * np.sin(preferred)
    counts = np.random.default_rng(seed).poisson(0.15 + 2.5 * np.clip(drive, 0, None))
    if refractory:
        counts = np.minimum(counts, 1)
        for t in range(1, N_BINS):
            counts[:, t] *= counts[:, t - 1] == 0
    return counts.astype(np.float32)


def _session(n, seed, split, *, angle=True, behavior=True, refractory=False):
    angles = np.random.default_rng(seed).uniform(-np.pi, np.pi, n)
    velocity = _velocity(angles)
    ds = make_session_dataset(_counts(velocity, seed + 100, refractory), BIN,
                              split=np.asarray(split) if np.ndim(split) else np.full(n, split),
                              extra_trial_vars={"trial_reach_angle": angles} if angle else {})
    if behavior:
        ds["behavior"] = (("trial", "time", "behavior_dim"), velocity)
        ds = ds.assign_coords(behavior_dim=np.array(["x", "y"]))
    return ds


@pytest.fixture(scope="module")
def maze_sets():
    real = _session(120, 1, np.where(np.arange(120) < 96, "train", "test"), refractory=True)
    generated = [_session(60, 2, "generated", behavior=False),          # angle-conditioned
                 _session(60, 3, "generated", angle=False),             # velocity-conditioned
                 _session(60, 4, "generated", angle=False, behavior=False)]  # unconditional
    return real, generated, ["angle", "velocity", "unconditional"]


@pytest.fixture(scope="module")
def maze_report(tmp_path_factory, maze_sets):
    from nwb_ldns.metrics.evaluate import evaluate
    from nwb_ldns.report import write_report

    real, generated, names = maze_sets
    result = evaluate(real, generated, names=names, n_resamples=2)
    out = tmp_path_factory.mktemp("maze_report") / "report"
    write_report(out, real, generated, result)
    return out, result


def test_conditioned_report_has_the_psth_decoding_and_isi_figures(maze_report):
    out, _ = maze_report
    page = (out / "index.html").read_text()
    images = sorted(p.name for p in out.glob("*.png"))
    for name in ("psth_reach_angle.png", "decoded_trajectories.png", "isi_distribution.png"):
        assert name in images and f'src="{name}"' in page, name
    assert all(f'src="{name}"' in page for name in images)
    assert "Per-condition PSTHs (reach_angle)" in page and "Decoded behaviour of conditioned samples" in page
    assert "placement rule" in page  # the ISI caption says where ISIs below one bin come from


def test_results_json_has_the_per_condition_psth_correlation(maze_report):
    out, result = maze_report
    saved = json.loads((out / "results.json").read_text())["condition_psth"]
    angle, velocity, unconditional = saved["generated"]
    assert unconditional is None  # no angle, no behaviour: nothing to condition on
    for summary in (angle, velocity):  # velocity: the angle of its requested trace, read like the recipe reads it
        assert summary["variable"] == "trial_reach_angle" and summary["kind"] == "angle_sector"
        assert summary["n_conditions"] == 8 and set(summary["conditions"]) == {f"{k * 45} deg" for k in range(8)}
        assert all(c["r"] is not None and c["n_real"] > 0 for c in summary["conditions"].values())
        assert summary["mean_r_specific"] > 0.5  # the tuned rates follow the requested direction
    assert saved["heldout_real"]["trial_reach_angle"]["n_conditions"] > 0
    assert angle["mean_r"] == pytest.approx(result["condition_psth"]["generated"][0]["mean_r"])


def test_no_condition_figures_without_conditions(maze_sets):
    """An unconditional set alone (no trial variable, no behaviour): the plan has no PSTH or decoding figure."""
    from nwb_ldns.metrics.evaluate import fit_behaviour_decoder
    from nwb_ldns.report import _condition_plan
    from nwb_ldns.report import condition_figures as cfigs

    real, generated, _ = maze_sets
    train = real.isel(trial=np.flatnonzero(real["split"].values == "train"))
    heldout = real.isel(trial=np.flatnonzero(real["split"].values == "test"))
    assert _condition_plan(cfigs, train, heldout, {"unconditional": generated[2]}) == []
    assert [p[0] for p in _condition_plan(cfigs, train, heldout, {"velocity": generated[1]})] == [
        "psth_reach_angle.png", "decoded_trajectories.png"]
    decoder, _ = fit_behaviour_decoder(train)
    assert [kind for _, kind in cfigs.decoding_panels(decoder, heldout, {"angle": generated[0]})] == ["angle", "angle"]


def test_isis_follow_the_placement_rule():
    """Two spikes in one bin are dt/3 apart; spikes alone in bins k apart are k bins apart (histogram bin k)."""
    from nwb_ldns.report.figures import isi_histogram, pooled_isis

    counts = np.zeros((2, 10, 1), np.float32)
    counts[0, 2, 0] = 2  # dt/3 apart, then 5.5 - 2.667 = 2.833 bins to the next
    counts[0, 5, 0] = 1
    counts[1, [1, 4], 0] = 1  # 3 bins apart; ISIs never cross trials
    isis = np.sort(pooled_isis(counts, BIN))
    assert np.allclose(isis, np.array([1 / 3, 17 / 6, 3.0]) * BIN)
    edges, fraction = isi_histogram(isis, BIN)
    assert len(fraction) == 20 and edges[0] == 0 and edges[-1] == pytest.approx(19.999 * BIN * 1e3)
    assert fraction[0] == pytest.approx(1 / 3) and fraction[2] == pytest.approx(1 / 3)
    assert fraction[3] == pytest.approx(1 / 3)


def test_refractory_real_data_has_no_isi_below_two_bins_poisson_does(maze_sets):
    from nwb_ldns.report.figures import isi_histogram, pooled_isis

    real, generated, _ = maze_sets
    _, real_fraction = isi_histogram(pooled_isis(real["counts"].values, BIN), BIN)
    _, poisson_fraction = isi_histogram(pooled_isis(generated[2]["counts"].values, BIN), BIN)
    assert real_fraction[:2].sum() == 0 and real_fraction[2] > 0
    assert poisson_fraction[0] > 0.05 and poisson_fraction[1] > 0.05
