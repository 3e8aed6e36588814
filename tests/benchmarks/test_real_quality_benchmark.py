"""The real-data quality benchmark (benchmarks/real_quality.py) runs end to end on a tiny budget: finite numbers."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

TINY = {"autoencoder.epochs": 2, "autoencoder.val_every": 1, "diffusion.epochs": 2, "diffusion.num_steps": 20,
        "autoencoder.batch_size": 16, "diffusion.batch_size": 16}


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("real_quality", PROJECT_ROOT / "benchmarks" / "real_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(result: dict, n_train: int) -> None:
    assert [c["reference"] for c in result["comparisons"]] == ["test", "train"]
    for comp in result["comparisons"]:
        assert set(comp["sets"]) == {"LDNS tiny ddim-10", "PSTH-Poisson", "LDS"}
        assert 2 <= comp["k"] <= n_train
        for stats in [comp["floor"], *comp["sets"].values()]:
            for key, (mean, std) in stats.items():
                assert math.isfinite(mean) and mean >= 0 and math.isfinite(std), (key, mean, std)
    assert all(t["fit_s"] >= 0 and t["sample_s"] >= 0 for t in result["times"].values())


def test_benchmark_runs_on_a_mock_session(mock_session_path, tmp_path):
    bench = _benchmark_module()
    bench.main([str(mock_session_path), "--out", str(tmp_path), "--preset", "tiny", "--sampler", "ddim", "--steps", "10",
                "--bin-width", "0.01", "--no-progress", *[f"--set={k}={v}" for k, v in TINY.items()]])
    result = json.loads((tmp_path / "result.json").read_text())
    _check(result, result["shape"]["n_train"])
    table = (tmp_path / "table.md").read_text()
    assert "| real train+val trials (the floor) |" in table and "| PSTH-Poisson |" in table
    assert set(bench.wins(result)) == {"PSTH-Poisson", "LDS"}


@pytest.mark.slow
def test_benchmark_runs_on_the_shared_real_file(real_nwb_path, tmp_path):
    bench = _benchmark_module()
    result = bench.run_benchmark(real_nwb_path, tmp_path, reader={
        "trials_table": "intervals/recognition_table", "align": "start_time", "window": (0.0, 1.5),
        "bin_width": 0.05}, preset="tiny", overrides=TINY, sampler="ddim", steps=10, progress=False)
    assert result["shape"]["units"] == 35 and result["shape"]["bins"] == 30
    _check(result, result["shape"]["n_train"])
    assert "LDNS tiny ddim-10" in bench.format_result(result)
