"""Progress off a terminal: a few plain lines (one per 10 %), not a redrawn bar per step (SLURM and CI logs)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nwb_ldns.progress import LineProgress, bar
from nwb_ldns.testing import write_mock_session


def test_line_progress_prints_one_line_per_tenth(capsys):
    with LineProgress(total=1000, desc="work", unit="step") as progress:
        for _ in range(1000):
            progress.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("work: 1000/1000 step (100 %)")


def test_line_progress_reports_an_early_end_and_iterables(capsys):
    progress = LineProgress(total=100, desc="fit")
    progress.update(37)
    progress.total = progress.n  # early stopping shortens the bar
    progress.close()
    assert capsys.readouterr().err.splitlines()[-1].startswith("fit: 37/37")
    assert list(LineProgress(range(5), desc="items")) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("setting, expected", [("lines", LineProgress), ("off", None), ("bars", None)])
def test_environment_chooses_the_display(monkeypatch, setting, expected):
    monkeypatch.setenv("NWB_LDNS_PROGRESS", setting)
    made = bar(total=10, desc="x")
    if expected is LineProgress:
        assert isinstance(made, LineProgress)
    else:
        assert not isinstance(made, LineProgress)
        assert made.disable == (setting == "off")
    made.close()


def test_piped_fit_and_sample_write_few_progress_lines(tmp_path):
    """The acceptance line: a piped `fit` writes under 50 progress lines (here: 2 stages x 10, plus messages)."""
    session = tmp_path / "s.nwb"
    write_mock_session(session, n_trials=40)
    env = {**os.environ, "NWB_LDNS_PROGRESS": ""}  # decided by the terminal: stderr is a pipe here
    fit = subprocess.run([sys.executable, "-m", "nwb_ldns", "fit", str(session), "--preset", "tiny", "--epochs", "40",
                          "--out", str(tmp_path / "m.ldns")], capture_output=True, text=True, env=env, timeout=300)
    assert fit.returncode == 0, fit.stderr[-2000:]
    lines = fit.stderr.splitlines()
    progress = [line for line in lines if line.startswith(("autoencoder: ", "diffusion: "))]
    assert "\r" not in fit.stderr
    assert 10 <= len(progress) <= 22, progress  # one per 10 % of each stage (+ an early-stop line)
    assert len(lines) < 50, lines
    sample = subprocess.run([sys.executable, "-m", "nwb_ldns", "sample", str(tmp_path / "m.ldns"), "--n", "300",
                             "--out", str(tmp_path / "g.nwb")], capture_output=True, text=True, env=env, timeout=300)
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert "\r" not in sample.stderr and len(sample.stderr.splitlines()) < 50, sample.stderr
