"""End to end through the real CLI: convert -> fit (tiny) -> sample -> fresh-process read -> evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.cli_helpers import file_digest, run_cli

pytestmark = pytest.mark.slow

# Reads a synthetic file with plain pynwb in a process where nwb_ldns and ndx_ldns cannot be imported.
FRESH_READER = textwrap.dedent(
    """
    import importlib.abc, json, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("nwb_ldns", "ndx_ldns", "nwb_ldns.cli"):
                raise ImportError(f"{name} is blocked in this process")
    sys.meta_path.insert(0, Block())
    from pynwb import NWBHDF5IO
    with NWBHDF5IO(sys.argv[1], "r") as io:
        nwb = io.read()
        prov = [obj for obj in nwb.lab_meta_data.values() if "Provenance" in obj.neurodata_type]
        assert prov, f"no provenance object in {list(nwb.lab_meta_data)}"
        fields = {k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in prov[0].fields.items()
                  if not hasattr(v, "neurodata_type")}
        out = {
            "n_units": len(nwb.units),
            "n_trials": len(nwb.trials),
            "n_spikes": int(len(nwb.units["spike_times"].target.data[:])),
            "provenance_type": prov[0].neurodata_type,
            "provenance": fields,
            "subject_id": nwb.subject.subject_id,
            "modules_imported": sorted(m for m in sys.modules if m.startswith(("nwb_ldns", "ndx_ldns"))),
        }
    print(json.dumps(out))
    """
)


def test_convert_fit_sample_read_evaluate(tmp_path):
    session = tmp_path / "lorenz.nwb"
    model_dir = tmp_path / "lorenz.ldns"
    synthetic = tmp_path / "synthetic.nwb"
    metrics_json = tmp_path / "metrics.json"

    run_cli("convert", "lorenz", session, "--trials", "64", "--seed", "3")
    source_digest = file_digest(session)

    run_cli("fit", session, "--preset", "tiny", "--out", model_dir)
    assert file_digest(session) == source_digest, "fit modified its input file"
    assert (model_dir / "config.json").is_file()
    assert sorted(p.suffix for p in model_dir.glob("*.safetensors")) == [".safetensors", ".safetensors"]
    assert not list(model_dir.rglob("*.pt")) and not list(model_dir.rglob("*.pkl"))

    run_cli("sample", model_dir, "--n", "20", "--out", synthetic, "--seed", "7", "--sampler", "ddim", "--steps", "10")
    assert file_digest(session) == source_digest

    fresh = subprocess.run(
        [sys.executable, "-c", FRESH_READER, str(synthetic)], capture_output=True, text=True, timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr
    read_back = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert read_back["modules_imported"] == []
    assert read_back["n_units"] == 128
    assert read_back["n_trials"] == 20
    assert read_back["n_spikes"] > 0
    provenance_text = json.dumps(read_back["provenance"])
    assert "7" in provenance_text  # the seed
    assert any(len(str(v)) == 64 for v in read_back["provenance"].values()), "no sha256 in the provenance"

    result = run_cli("evaluate", session, synthetic, "--json", metrics_json)
    assert file_digest(session) == source_digest
    for label in ("KL pop. count", "RMSE corr", "RMSE mean ISI", "RMSE std ISI", "noise floor", "synthetic.nwb"):
        assert label in result.stdout
    metrics = json.loads(metrics_json.read_text())
    for statistic in ("kl_pop_count", "rmse_corr", "rmse_mean_isi", "rmse_std_isi"):
        floor = metrics["noise_floor"]["mean"][statistic]
        assert np.isfinite(floor) and floor >= 0
    numbers = list(_numbers(metrics))
    assert numbers and all(np.isfinite(numbers))


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield float(tree)
