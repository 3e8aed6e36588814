"""`nwb-ldns evaluate` on small mock files: table, noise floor, --json, errors as one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nwb_ldns.cli.main import cli


@pytest.fixture(scope="module")
def synth_paths(tmp_path_factory):
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.export.testing import make_generated_dataset

    root = tmp_path_factory.mktemp("synth")
    good = write_synthetic(make_generated_dataset(n_trials=14, n_bins=32, n_units=8, bin_width=0.01, seed=1),
                           root / "synth_a.nwb")
    other = write_synthetic(make_generated_dataset(n_trials=10, n_bins=32, n_units=8, bin_width=0.01, seed=2,
                                                   rate=0.6), root / "synth_b.nwb")
    wrong = write_synthetic(make_generated_dataset(n_trials=6, n_bins=32, n_units=5, bin_width=0.01),
                            root / "wrong_units.nwb")
    return good, other, wrong


def test_evaluate_prints_table_and_writes_json(mock_session_path, synth_paths, tmp_path):
    good, other, _ = synth_paths
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(good), str(other), "--json", str(out),
                                      "--bootstrap", "3"])
    assert result.exit_code == 0, result.output
    assert "noise floor" in result.output and "synth_a.nwb" in result.output and "synth_b.nwb" in result.output
    data = json.loads(out.read_text())
    assert data["settings"]["n_resamples"] == 3 and data["real"]["n_trials"] == 16  # 70 % of 24 mock trials
    assert [g["name"] for g in data["generated"]] == ["synth_a.nwb", "synth_b.nwb"]
    for entry in data["generated"] + [data["noise_floor"]]:
        assert set(entry["mean"]) >= {"kl_pop_count", "rmse_corr", "rmse_corr_pairs", "rmse_mean_isi",
                                      "rmse_std_isi"}
        assert len(entry["values"]["rmse_corr"]) == 3
    # the numbers equal the Python API on the same data
    from nwb_ldns.data import load_session
    from nwb_ldns.metrics.evaluate import evaluate

    api = evaluate(load_session(mock_session_path), [load_session(good), load_session(other)],
                   names=["a", "b"], n_resamples=3)
    for got, expected in zip(data["generated"], api["generated"]):
        np.testing.assert_allclose(got["values"]["rmse_std_isi"], expected["values"]["rmse_std_isi"], rtol=1e-12)
    # a second run without --overwrite refuses to replace the JSON
    again = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(good), "--json", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_evaluate_rejects_mismatched_units(mock_session_path, synth_paths):
    _, _, wrong = synth_paths
    result = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(wrong)])
    assert result.exit_code == 2
    assert "units" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_report_option_writes_page(mock_session_path, synth_paths, tmp_path):
    good, _, _ = synth_paths
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(good), "--report", str(report),
                                      "--bootstrap", "1", "--no-memorisation"])
    assert result.exit_code == 0, result.output
    page = (report / "index.html").read_text()
    assert "synth_a.nwb" in page and (report / "pca_psd.png").stat().st_size > 1000
    assert not (report / "memorisation.png").exists()
    assert "NaN" not in (report / "results.json").read_text()  # strict JSON: NaN written as null


def test_evaluate_api_variable_length_and_bin_width_check():
    from nwb_ldns.data.schema import make_session_dataset
    from nwb_ldns.errors import SessionContentError
    from nwb_ldns.metrics.evaluate import evaluate

    rng = np.random.default_rng(0)
    mask = np.arange(20)[None, :] < rng.integers(8, 21, 30)[:, None]
    counts = rng.poisson(0.5, (30, 20, 4)) * mask[:, :, None]
    split = np.where(np.arange(30) < 20, "train", "test")
    real = make_session_dataset(counts, 0.02, mask=mask, split=split)
    gen = make_session_dataset(counts[:12], 0.02, mask=mask[:12], split=np.full(12, "generated"))
    out = evaluate(real, [gen], n_resamples=2)
    assert out["real"]["n_trials"] == 20 and out["generated"][0]["memorisation"]["exact_copies"] == 12
    assert out["generated"][0]["memorisation"]["frac_closer_than_heldout_p5"] == 1.0
    wrong_bw = make_session_dataset(counts[:12], 0.01, mask=mask[:12], split=np.full(12, "generated"))
    with pytest.raises(SessionContentError, match="--bin-width"):
        evaluate(real, [wrong_bw])


def test_evaluate_decodes_behaviour_when_present():
    from nwb_ldns.data.schema import make_session_dataset
    from nwb_ldns.metrics.evaluate import evaluate

    rng = np.random.default_rng(1)
    velocity = np.cumsum(rng.standard_normal((40, 50, 2)), axis=1) * 0.1
    rates = 0.3 * np.exp(velocity @ rng.uniform(-1, 1, (2, 12)))
    counts = rng.poisson(np.clip(rates, 0, 5))
    split = np.where(np.arange(40) < 30, "train", "test")
    real = make_session_dataset(counts, 0.01, split=split)
    real["behavior"] = (("trial", "time", "behavior_dim"), velocity.astype(np.float32))
    good = real.isel(trial=slice(30, 40)).assign(split=("trial", np.full(10, "generated")))
    shuffled = good.copy()
    shuffled["behavior"] = (("trial", "time", "behavior_dim"), good["behavior"].values[::-1])  # wrong trials
    out = evaluate(real, [good, shuffled, good.drop_vars("behavior")], n_resamples=1, memorisation=False)
    dec = out["decoding"]
    assert dec["r2_heldout_real"] > 0.3
    assert dec["r2_generated"][0] == pytest.approx(dec["r2_heldout_real"])  # same trials, same behaviour
    assert dec["r2_generated"][1] < dec["r2_generated"][0] and dec["r2_generated"][2] is None
    no_behaviour = evaluate(real.drop_vars("behavior"), [good.drop_vars("behavior")], n_resamples=1,
                            memorisation=False)
    assert no_behaviour["decoding"] is None


def test_evaluate_against_held_out_trials_with_pearson_agreement(mock_session_path, synth_paths, tmp_path):
    good, _, _ = synth_paths
    out = tmp_path / "heldout.json"
    result = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(good), "--json", str(out),
                                      "--bootstrap", "2", "--reference-split", "test"])
    assert result.exit_code == 0, result.output
    assert "held-out 'test' trials" in result.output and "Pearson r vs real" in result.output
    data = json.loads(out.read_text())
    from nwb_ldns.data import load_session

    real = load_session(mock_session_path)
    n_test = int((real["split"].values == "test").sum())
    assert data["real"]["split"] == "test" and data["real"]["n_trials"] == n_test
    # the memorisation check still compares with the training trials, held-out = every non-training trial
    assert data["real"]["n_heldout_trials"] == int((real["split"].values != "train").sum())
    from nwb_ldns.metrics import statistic_agreement

    test = real.isel(trial=np.flatnonzero(real["split"].values == "test"))
    expected = statistic_agreement(test["counts"].values, load_session(good)["counts"].values, 0.01,
                                   maxval=data["settings"]["maxval"])
    for key, value in expected.items():
        assert data["generated"][0]["agreement"][key] == pytest.approx(value, rel=1e-12, nan_ok=True)
    assert set(data["agreement_floor"]) == set(expected)


def test_evaluate_baseline_option_prints_verdict_and_writes_it(mock_session_path, synth_paths, tmp_path):
    import json as _json

    from nwb_ldns.export import write_synthetic
    from nwb_ldns.export.testing import make_generated_dataset

    good, other, _ = synth_paths
    psth = make_generated_dataset(n_trials=12, n_bins=32, n_units=8, bin_width=0.01, seed=3, rate=2.0)
    psth.attrs.update(model_name="PSTH-Poisson", model_config=_json.dumps({"baseline": "psth"}), sampler="ancestral",
                      sampler_steps=0)
    psth_path = write_synthetic(psth, tmp_path / "psth.nwb")
    out = tmp_path / "verdict.json"
    result = CliRunner().invoke(cli, ["evaluate", str(mock_session_path), str(good), "--baseline", str(other),
                                      "--baseline", str(psth_path), "--json", str(out), "--bootstrap", "2",
                                      "--no-memorisation"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("verdict: multiples of the equal-size floor"))
    rows = lines[start + 3:start + 6]
    assert [r.split(" (")[0] for r in rows] == ["LDNS tiny ddpm-1000", "LDNS tiny ddpm-1000", "PSTH-Poisson"]
    assert "(synth_a.nwb)" in rows[0] and "(psth.nwb)" in rows[2] and "x" in rows[0] and "floor" in rows[0]
    data = json.loads(out.read_text())
    verdict = data["verdict"]
    n_train = data["real"]["n_trials"]
    n_pool = 24 - n_train
    assert verdict["k"] == min(n_train, n_pool, 14, 10, 12) and verdict["pool"] == "val+test"
    sets = {s["name"]: s for s in verdict["sets"]}
    # --baseline marks synth_b.nwb (an LDNS file); psth.nwb is a baseline by its model name
    assert [sets[n]["baseline"] for n in ("synth_a.nwb", "synth_b.nwb", "psth.nwb")] == [False, True, True]
    assert set(sets["synth_a.nwb"]["beats"]) == {"synth_b.nwb", "psth.nwb"}
    assert set(sets["synth_a.nwb"]["beats"]["psth.nwb"]) == set(data["keys"])
    assert sets["psth.nwb"]["label"] == "PSTH-Poisson" and sets["synth_a.nwb"]["label"] == "LDNS tiny ddpm-1000"
    # the 2x-rate baseline is far off on rates: a large multiple of the floor, and the LDNS set beats it there
    assert sets["psth.nwb"]["multiple_of_floor"]["rmse_rate_hz"] > 3
    assert sets["synth_a.nwb"]["beats"]["psth.nwb"]["rmse_rate_hz"]
    assert [g["baseline"] for g in data["generated"]] == [False, True, True]
