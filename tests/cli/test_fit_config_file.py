"""`fit --config FILE`: a model directory's config reproduces its run; JSON/YAML settings files; bad files refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from nwb_ldns.config import read_config_file
from nwb_ldns.errors import OptionError
from nwb_ldns.testing import write_mock_session


def _fit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", *args, "--quiet"], capture_output=True, text=True,
                          env=env, timeout=300)


def test_config_of_a_model_directory_reproduces_the_run(tmp_path):
    session = tmp_path / "s.nwb"
    write_mock_session(session, n_trials=30)
    first = _fit(str(session), "--preset", "tiny", "--epochs", "3", "--seed", "5", "--set", "autoencoder.latent=2",
                 "--out", str(tmp_path / "a.ldns"))
    assert first.returncode == 0, first.stderr[-2000:]
    again = _fit(str(session), "--config", str(tmp_path / "a.ldns" / "config.json"), "--out", str(tmp_path / "b.ldns"))
    assert again.returncode == 0, again.stderr[-2000:]
    config = [json.loads((tmp_path / f"{m}.ldns" / "config.json").read_text())["config"] for m in "ab"]
    assert config[0] == config[1] and config[1]["autoencoder"]["latent"] == 2 and config[1]["seed"] == 5
    for name in ("autoencoder", "denoiser"):
        a, b = (load_file(str(tmp_path / f"{m}.ldns" / f"{name}.safetensors")) for m in "ab")
        assert all((a[k] == b[k]).all() for k in a)
    # options on the command line win over the file
    changed = _fit(str(session), "--config", str(tmp_path / "a.ldns"), "--epochs", "2", "--out", str(tmp_path / "c.ldns"))
    assert changed.returncode == 0, changed.stderr[-2000:]
    config_c = json.loads((tmp_path / "c.ldns" / "config.json").read_text())["config"]
    assert config_c["autoencoder"]["epochs"] == 2 and config_c["autoencoder"]["latent"] == 2


@pytest.mark.parametrize("name, text, preset, expected", [
    ("s.yaml", "preset: tiny\nautoencoder:\n  epochs: 7\n  latent: 2\n", "tiny",
     {"autoencoder.epochs": 7, "autoencoder.latent": 2}),
    ("s.json", '{"diffusion.epochs": 4, "seed": 3}', None, {"diffusion.epochs": 4, "seed": 3}),
    ("s.yml", "diffusion.lr: 0.001\n", None, {"diffusion.lr": 0.001}),
])
def test_settings_files(tmp_path, name, text, preset, expected):
    path = tmp_path / name
    path.write_text(text)
    assert read_config_file(path) == (preset, expected)


@pytest.mark.parametrize("name, text, fragment", [
    ("bad.json", "{not json", "not valid JSON"),
    ("bad.yaml", "a: [1, 2", "not valid YAML"),
    ("list.yaml", "- 1\n- 2\n", "expected a mapping of settings"),
])
def test_bad_files_are_refused(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(OptionError, match=fragment):
        read_config_file(path)


def test_unknown_key_in_a_file_is_an_option_error(tmp_path):
    session = tmp_path / "s.nwb"
    write_mock_session(session, n_trials=30)
    settings = tmp_path / "s.yaml"
    settings.write_text("autoencoder:\n  epoch: 3\n")
    result = _fit(str(session), "--config", str(settings), "--out", str(tmp_path / "m.ldns"), "--dry-run")
    assert result.returncode == 2 and result.stderr.startswith("Error:") and "epoch" in result.stderr
    assert not (tmp_path / "m.ldns").exists()
