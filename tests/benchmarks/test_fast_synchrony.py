"""benchmarks/fast_synchrony.py: coincidence counting is exact, and the script runs on a session end to end."""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np

from tests.conftest import PROJECT_ROOT


def _module():
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("fast_synchrony", PROJECT_ROOT / "benchmarks" / "fast_synchrony.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coincidence_fractions_count_the_nearest_partner_spike():
    sync = _module()
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0004, 2.003, 3.02, 10.0])
    assert sync.coincidence_fractions(a, b, (0.001, 0.005, 0.025)) == [0.25, 0.5, 0.75]
    assert sync.coincidence_fractions(a, np.array([]), (0.001,)) == [0.0]


def test_smoothing_removes_fast_shared_events_but_not_the_train_trials():
    sync = _module()
    rng = np.random.default_rng(0)
    events = rng.random((200, 60)) < 0.1  # fast events shared by units 0 and 1, one bin long
    train = rng.poisson(0.2, (200, 60, 4)).astype(np.float64)
    train[:, :, 0] += events
    train[:, :, 1] += events
    sets = sync.smoothed_references(train, [5], rng)
    assert set(sets) == {"PSTH-Poisson", "train trials smoothed, sigma 5 bins", "train trials themselves"}
    corr = {name: np.corrcoef(x.reshape(-1, 4).T)[0, 1] for name, x in sets.items()}
    assert corr["train trials themselves"] > 0.3
    assert corr["train trials smoothed, sigma 5 bins"] < 0.1 and abs(corr["PSTH-Poisson"]) < 0.05


def test_runs_on_a_session(mock_session_path, capsys):
    sync = _module()
    sync.main([str(mock_session_path), "--bin-width", "0.02", "--sigmas", "2", "--pairs", "3"])
    out = capsys.readouterr().out
    assert "| real train+val (floor) |" in out and "| train trials smoothed, sigma 2 bins |" in out
    pair_rows = [line for line in out.splitlines() if re.match(r"^\| \d+, \d+ \|", line)]
    assert len(pair_rows) == 3 and all(line.count("/") == 2 for line in pair_rows)
