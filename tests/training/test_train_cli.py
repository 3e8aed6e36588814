"""`nwb-ldns fit` and `nwb-ldns sample` in process (click's CliRunner) on a small NWB session."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from nwb_ldns.cli.main import cli

FAST_SET = ["--set", "autoencoder.batch_size=8", "--set", "diffusion.batch_size=8", "--set", "diffusion.num_steps=20",
            "--epochs", "2", "--quiet"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_dry_run_prints_config_and_parameter_counts(mock_session_path, tmp_path):
    before = _digest(mock_session_path)
    out = tmp_path / "never"
    result = invoke("fit", mock_session_path, "--preset", "tiny", "--dry-run", "--out", out,
                    "--set", "autoencoder.epochs=7")
    assert result.exit_code == 0, result.output
    assert '"epochs": 7' in result.output
    assert "autoencoder:" in result.output and "parameters" in result.output and "denoiser:" in result.output
    assert not out.exists() and _digest(mock_session_path) == before


def test_bad_set_key_is_one_line_error(mock_session_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", str(mock_session_path), "--preset", "tiny", "--dry-run",
                                 "--set", "autoencoder.nope=1"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "autoencoder.nope" in lines[0] and "autoencoder.epochs" in lines[0]


def test_fit_resume_and_sample(mock_session_path, tmp_path):
    before = _digest(mock_session_path)
    model_dir = tmp_path / "m.ldns"
    result = invoke("fit", mock_session_path, "--preset", "tiny", "--out", model_dir, *FAST_SET, "--seed", "5")
    assert result.exit_code == 0, result.output
    assert str(model_dir) in result.output
    config = json.loads((model_dir / "config.json").read_text())["config"]
    assert config["seed"] == 5 and config["autoencoder"]["epochs"] == config["diffusion"]["epochs"] == 2
    assert _digest(mock_session_path) == before

    again = CliRunner().invoke(cli, ["fit", str(mock_session_path), "--preset", "tiny", "--out", str(model_dir)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    resumed = invoke("fit", mock_session_path, "--out", model_dir, "--resume")
    assert resumed.exit_code == 0 and "already fully trained" in resumed.output + (resumed.stderr or "")

    synthetic = tmp_path / "synthetic.nwb"
    result = invoke("sample", model_dir, "--n", "4", "--out", synthetic, "--seed", "9", "--sampler", "ddim",
                    "--steps", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert synthetic.is_file() and str(synthetic) in result.output
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(synthetic), "r") as io:
        nwb = io.read()
        assert len(nwb.units) == 8 and len(nwb.trials) == 4
        assert "'even'" in nwb.units.description  # the default placement, named
    uniform = tmp_path / "uniform.nwb"
    result = invoke("sample", model_dir, "--n", "4", "--out", uniform, "--seed", "9", "--sampler", "ddim",
                    "--steps", "3", "--quiet", "--spike-placement", "uniform")
    assert result.exit_code == 0, result.output
    with NWBHDF5IO(str(uniform), "r") as io:
        description = io.read().units.description
        assert "uniformly at random" in description and "seed 9" in description
    exists = CliRunner().invoke(cli, ["sample", str(model_dir), "--n", "2", "--out", str(synthetic)])
    assert exists.exit_code == 2 and "--overwrite" in exists.output
    lengths = CliRunner().invoke(cli, ["sample", str(model_dir), "--n", "3", "--out", str(tmp_path / "x.nwb"),
                                       "--length", "10", "--length", "12"])
    assert lengths.exit_code == 2 and "--length" in lengths.output


def test_default_model_dir_is_beside_the_session():
    from pathlib import Path

    from nwb_ldns.cli.commands.fit import default_model_dir

    assert default_model_dir("/data/sub-1_ses-2.nwb") == Path("/data/sub-1_ses-2.ldns")
    assert default_model_dir("/data/s.nwb.zarr") == Path("/data/s.ldns")
    assert default_model_dir("https://dandiarchive.org/x/y/file.nwb") == Path("file.ldns")


@pytest.mark.parametrize("command", ["fit", "sample"])
def test_every_option_is_documented(command):
    from nwb_ldns.cli.main import LazyGroup

    cmd = LazyGroup._load(command)
    for param in cmd.params:
        if param.param_type_name == "option":
            assert param.help, f"{command} {param.opts} has no help"
