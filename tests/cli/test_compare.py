"""`nwb-ldns compare`: fit several models, sample them into NWB, one table with the paper's rows and columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nwb_ldns.cli.main import cli

MODELS = ["ldns", "psth", "lds"]
PAPER_KEYS = ["kl_pop_count", "rmse_corr", "rmse_mean_isi", "rmse_std_isi"]


def _invoke(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    from nwb_ldns.testing import write_mock_session

    path = tmp_path_factory.mktemp("compare") / "session.nwb"
    write_mock_session(path, n_trials=40, n_bins=32, n_units=8)
    return path


@pytest.fixture(scope="module")
def compared(session) -> tuple[Path, "click.testing.Result"]:  # noqa: F821
    out = session.parent / "cmp"
    result = _invoke("compare", session, "--models", ",".join(MODELS), "--out", out, "--budget", "tiny", "--quiet")
    assert result.exit_code == 0, result.output
    return out, result


def _table_lines(output: str) -> list[list[str]]:
    rows = [line for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in rows]


def test_table_has_a_row_per_model_and_the_floor(compared):
    out, result = compared
    header, *rows = _table_lines(result.output)
    assert header == ["model", "KL pop. count (x1e-3)", "RMSE corr (x1e-3)", "RMSE mean ISI (s)", "RMSE std ISI (s)"]
    assert [row[0] for row in rows] == ["LDNS tiny ddpm-100 (ldns)", "PSTH-Poisson (psth)", "LDS-Poisson (lds)",
                                        "real vs real (noise floor)"]
    for row in rows:
        assert len(row) == 5 and all(" ± " in cell for cell in row[1:]), row
    saved = json.loads((out / "compare.json").read_text())
    assert saved["comparison"]["table"]["rows"] == rows  # the terminal, the JSON and the report: one table
    assert [m["name"] for m in saved["comparison"]["models"]] == MODELS
    assert all((out / "samples" / f"{name}.nwb").is_file() for name in MODELS)
    page = (out / "report" / "index.html").read_text()
    assert "Model comparison" in page and "real vs real (noise floor)" in page and "correlations.png" in page


def test_json_equals_a_direct_evaluate_of_the_sample_files(compared, session, tmp_path):
    out, _ = compared
    direct = tmp_path / "direct.json"
    samples = [out / "samples" / f"{name}.nwb" for name in MODELS]
    result = _invoke("evaluate", session, *samples, "--reference-split", "test", "--json", direct)
    assert result.exit_code == 0, result.output
    mine, theirs = json.loads((out / "compare.json").read_text()), json.loads(direct.read_text())
    assert mine["real"]["split"] == "test" and mine["settings"]["n_resamples"] == 5
    assert mine["real"]["n_trials"] == theirs["real"]["n_trials"] > 0
    for a, b in zip(mine["generated"], theirs["generated"], strict=True):
        assert a["n_trials"] == mine["real"]["n_trials"]  # N defaults to the number of reference trials
        for key in PAPER_KEYS:
            assert a["mean"][key] == pytest.approx(b["mean"][key], rel=1e-12)
            assert a["std"][key] == pytest.approx(b["std"][key], rel=1e-12)
    for key in PAPER_KEYS:
        assert mine["noise_floor"]["mean"][key] == pytest.approx(theirs["noise_floor"]["mean"][key], rel=1e-12)


def test_resume_reuses_models_and_samples(compared, session):
    out, _ = compared
    watched = [*sorted((out / "models" / "ldns.ldns").glob("*.safetensors")),
               *[out / "samples" / f"{name}.nwb" for name in MODELS]]
    before = {path: path.stat().st_mtime_ns for path in watched}
    result = _invoke("compare", session, "--models", ",".join(MODELS), "--out", out, "--budget", "tiny", "--quiet",
                     "--resume", "--no-report")
    assert result.exit_code == 0, result.output
    assert {path: path.stat().st_mtime_ns for path in watched} == before
    assert "reused the fitted model" in result.output and result.output.count("reused ") >= 4
    saved = json.loads((out / "compare.json").read_text())
    assert all(m["sample_reused"] for m in saved["comparison"]["models"])


def test_resume_with_other_settings_is_refused(compared, session):
    out, _ = compared
    result = _invoke("compare", session, "--models", "psth", "--out", out, "--seed", "7", "--resume")
    assert result.exit_code == 2
    assert "seed" in result.output and "--overwrite" in result.output


def test_unknown_model_is_refused_with_the_list(session, tmp_path):
    result = _invoke("compare", session, "--models", "ldns,gpt", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "unknown model 'gpt'" in result.output and "ldns, psth, lds" in result.output
    assert not (tmp_path / "x").exists()
    result = _invoke("compare", session, "--models", "psth", "--set", "lds.n_latents=2", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "not one of --models" in result.output


def test_output_rule(compared, session, tmp_path):
    out, _ = compared
    result = _invoke("compare", session, "--models", "psth", "--out", out)
    assert result.exit_code == 2 and "--resume" in result.output and "--overwrite" in result.output
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    for flag in ("--overwrite", "--resume"):
        result = _invoke("compare", session, "--models", "psth", "--out", stranger, flag)
        assert result.exit_code == 2 and "not an nwb-ldns compare directory" in result.output
    assert (stranger / "notes.txt").read_text() == "keep me"
    result = _invoke("compare", session, "--models", "psth", "--out", session)
    assert result.exit_code == 2 and "is also an input" in result.output
    result = _invoke("compare", session, "--models", "psth", "--out", tmp_path / "new", "--trials-table", "nosuch")
    assert result.exit_code == 2 and not (tmp_path / "new").exists()  # a refused session leaves no folder


def test_resume_adds_a_model_and_overwrite_replaces_the_comparison(session, tmp_path):
    out = tmp_path / "psth-only"
    quick = ("--no-report", "--quiet")
    assert _invoke("compare", session, "--models", "psth", "--out", out, *quick).exit_code == 0
    psth_time = (out / "samples" / "psth.nwb").stat().st_mtime_ns
    result = _invoke("compare", session, "--models", "psth,lds", "--set", "lds.n_latents=2", "--out", out, *quick,
                     "--resume")
    assert result.exit_code == 0, result.output
    assert (out / "samples" / "psth.nwb").stat().st_mtime_ns == psth_time  # only the added model ran
    saved = json.loads((out / "compare.json").read_text())
    assert [g["name"] for g in saved["generated"]] == ["psth", "lds"]
    result = _invoke("compare", session, "--models", "lds", "--set", "lds.n_latents=3", "--out", out, "--resume")
    assert result.exit_code == 2 and "--set lds.*" in result.output
    result = _invoke("compare", session, "--models", "lds", "--out", out, *quick, "--overwrite")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "compare.json").read_text())
    assert [g["name"] for g in saved["generated"]] == ["lds"]
    assert not (out / "samples" / "psth.nwb").exists()  # a new comparison, not a resumed one
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def _units_description(path: Path) -> str:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        return io.read().units.description


def test_spike_placement_reaches_every_sample_file_and_a_resume_keeps_it(session, tmp_path):
    out = tmp_path / "uniform"
    quick = ("--no-report", "--quiet")
    result = _invoke("compare", session, "--models", "psth,lds", "--set", "lds.n_latents=2", "--out", out, *quick,
                     "--spike-placement", "uniform", "--seed", "3")
    assert result.exit_code == 0, result.output
    for name in ("psth", "lds"):
        description = _units_description(out / "samples" / f"{name}.nwb")
        assert "uniformly at random" in description and "seed 3" in description
    saved = json.loads((out / "compare.json").read_text())
    assert saved["comparison"]["settings"]["spike_placement"] == "uniform"
    result = _invoke("compare", session, "--models", "psth", "--out", out, "--seed", "3", "--resume", *quick)
    assert result.exit_code == 2 and "spike_placement" in result.output  # the default `even` would mix two runs
    plan = out / "compare_plan.json"  # a plan written before the option existed resumes as `even`
    saved_plan = json.loads(plan.read_text())
    del saved_plan["spike_placement"]
    plan.write_text(json.dumps(saved_plan))
    result = _invoke("compare", session, "--models", "psth", "--out", out, "--seed", "3", "--resume", *quick)
    assert result.exit_code == 0, result.output


def test_a_registered_model_whose_module_is_missing_is_refused_with_the_available_ones(monkeypatch):
    from nwb_ldns import compare
    from nwb_ldns.errors import OptionError

    entry = compare.NeuralBaselineEntry("tndm", "TNDM", "nwb_ldns.baselines.no_such_module")
    monkeypatch.setitem(compare.MODELS, "tndm", entry)
    assert "tndm" not in compare.available_models()
    assert compare.available_models()[:3] == ["ldns", "psth", "lds"]
    with pytest.raises(OptionError, match=r"model 'tndm' is not available .*no_such_module.*available: ldns, psth, lds"):
        compare.parse_models("ldns, TNDM")
    assert compare.parse_models(" ldns,psth,ldns ") == ["ldns", "psth"]


def test_tndm_without_behaviour_is_refused_before_any_fit(tmp_path):
    """compare --models ...,tndm on a session with no behaviour stops at once, naming --behavior, fitting nothing."""
    from click.testing import CliRunner

    from nwb_ldns.testing import write_mock_session
    from nwb_ldns.cli.main import cli

    session = tmp_path / "s.nwb"
    write_mock_session(session, n_trials=30)
    result = CliRunner().invoke(cli, ["compare", str(session), "--models", "psth,tndm", "--out", str(tmp_path / "c"),
                                      "--budget", "tiny", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "--behavior" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists()  # refused before anything was written
