"""benchmarks/psth_regime_oracle.py: the oracle/PSTH comparison runs, and has the power to see strong structure."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np

from tests.conftest import PROJECT_ROOT


def _oracle_module():
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("psth_regime_oracle",
                                                  PROJECT_ROOT / "benchmarks" / "psth_regime_oracle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulated_gain_is_shared_and_mean_preserving():
    oracle = _oracle_module()
    profile = np.full((10, 4), 2.0)
    counts, rates = oracle.simulate(profile, 4000, 0.5, np.random.default_rng(0))
    assert counts.shape == (4000, 10, 4)
    per_trial = rates[:, 0, 0]
    assert np.allclose(rates, per_trial[:, None, None])  # one gain a trial, shared by every bin and unit
    assert abs(per_trial.mean() / 2.0 - 1.0) < 0.05  # log-normal with mean 1
    assert abs(np.log(per_trial).std() - 0.5) < 0.03
    flat, _ = oracle.simulate(profile, 3, 0.0, np.random.default_rng(0))
    assert flat.dtype == np.float32


def test_oracle_runs_and_sees_a_strong_shared_gain(tmp_path, capsys):
    """At ~2 spikes a bin a shared gain (log sd 0.5) correlates the units strongly; the oracle must see it."""
    from nwb_ldns.testing import write_counts_session

    oracle = _oracle_module()
    session = tmp_path / "dense.nwb"
    write_counts_session(session, np.random.default_rng(1).poisson(2.0, (160, 8, 10)).astype(np.float32), 0.02)
    out = tmp_path / "oracle.json"
    oracle.main([str(session), "--bin-width", "0.02", "--seeds", "3", "--gain-sd", "0.5", "--json", str(out)])
    table = capsys.readouterr().out
    assert "| no shared variability |" in table and "| shared gain (log sd 0.5) |" in table
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"no shared variability", "shared gain (log sd 0.5)"}
    for regime in rows.values():
        assert len(regime) == 3
        for row in regime:
            for part in ("floor", "oracle", "psth"):
                for mean, std in row[part].values():
                    assert math.isfinite(mean) and mean >= 0 and math.isfinite(std)
    # PSTH-Poisson (independent units) misses the gain's correlations; the true process does not
    assert all(r["oracle_wins"]["rmse_corr"] for r in rows["shared gain (log sd 0.5)"])
    # without shared variability the oracle cannot win on correlations
    assert not any(r["oracle_wins"]["rmse_corr"] for r in rows["no shared variability"])
