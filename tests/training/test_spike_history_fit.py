"""fit --spike-history / sample --spike-history end to end (issue 13 item 5): on a session whose units have a
refractory period, history sampling keeps it where Poisson sampling violates it; the GLM lives in the model
directory as safetensors (validated on load), resumes like the other stages, and the provenance records it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nwb_ldns.testing import refractory_counts, short_isi_fraction

pytestmark = pytest.mark.slow
DEAD_BINS = 2  # no spike in the 2 bins after a spike: no ISI under 3 bins
FAST = {"autoencoder.epochs": 15, "diffusion.epochs": 30, "spike_history.enabled": True, "spike_history.history": 5,
        "spike_history.max_spikes": 1, "spike_history.epochs": 30}


def _refractory_counts() -> np.ndarray:
    return refractory_counts(120, 48, 6, dead_bins=DEAD_BINS)[0]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from nwb_ldns.data import load_session
    from nwb_ldns.testing import write_counts_session
    from nwb_ldns.train import fit

    root = tmp_path_factory.mktemp("history")
    counts = _refractory_counts()
    write_counts_session(root / "refractory.nwb", counts, 0.01)
    session = load_session(root / "refractory.nwb")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = fit(session, root / "m.ldns", preset="tiny", overrides=FAST, progress=False)
    finally:
        torch.set_num_threads(previous)
    return root, counts, model


def test_history_sampling_keeps_the_refractory_period_poisson_breaks(fitted):
    _, counts, model = fitted
    assert short_isi_fraction(counts, DEAD_BINS + 1) == 0.0
    poisson = model.sample(120, seed=3, progress=False)["counts"].values
    history = model.sample(120, seed=3, progress=False, spike_history=True)["counts"].values
    assert short_isi_fraction(poisson, DEAD_BINS + 1) > 0.3
    assert short_isi_fraction(history, DEAD_BINS + 1) < 0.05
    assert history.max() <= 1  # max_spikes 1: Bernoulli
    assert abs(history.mean() - counts.mean()) < 0.35 * counts.mean()


def test_glm_is_in_the_model_directory_and_validated_on_load(fitted, tmp_path):
    import shutil

    from nwb_ldns.errors import InputFileError
    from nwb_ldns.model_dir import LDNSModel

    root, _, model = fitted
    assert (root / "m.ldns" / "spike_history.safetensors").is_file()
    records = [json.loads(line) for line in (root / "m.ldns" / "training_log.jsonl").read_text().splitlines()]
    done = [r for r in records if r.get("stage") == "spike_history" and r.get("event") == "done"]
    assert len(done) == 1 and done[0]["final_loss"] < done[0]["first_loss"]
    loaded = LDNSModel.load(root / "m.ldns")
    assert torch.equal(loaded.spike_history.history_weight, model.spike_history.history_weight)
    broken = tmp_path / "broken.ldns"
    shutil.copytree(root / "m.ldns", broken)
    (broken / "spike_history.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputFileError, match="spike_history.safetensors"):
        LDNSModel.load(broken)


def test_cli_sample_with_history_records_it_and_plain_models_refuse(fitted, mock_session_path, tmp_path):
    from click.testing import CliRunner
    import pynwb

    from nwb_ldns.cli.main import cli

    root, _, _ = fitted
    out = tmp_path / "h.nwb"
    result = CliRunner().invoke(cli, ["sample", str(root / "m.ldns"), "--n", "4", "--out", str(out),
                                      "--spike-history", "--quiet"])
    assert result.exit_code == 0, result.output
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        conditioning = json.loads(io.read().lab_meta_data["ldns_provenance"].conditioning)
    assert conditioning["spike_history"]["history_bins"] == 5
    plain = CliRunner().invoke(cli, ["fit", str(mock_session_path), "--preset", "tiny", "--epochs", "1", "--quiet",
                                     "--out", str(tmp_path / "plain.ldns")])
    assert plain.exit_code == 0, plain.output
    assert "--spike-history" not in plain.stdout
    with_history = CliRunner().invoke(cli, ["fit", str(mock_session_path), "--preset", "tiny", "--epochs", "1",
                                            "--spike-history", "--quiet", "--out", str(tmp_path / "h.ldns")])
    assert with_history.exit_code == 0, with_history.output
    assert "next: nwb-ldns sample" in with_history.stdout and "--spike-history" in with_history.stdout
    refused = CliRunner().invoke(cli, ["sample", str(tmp_path / "plain.ldns"), "--n", "2", "--out",
                                       str(tmp_path / "p.nwb"), "--spike-history"])
    assert refused.exit_code == 2 and "--spike-history" in refused.stderr


def test_a_run_killed_after_the_history_stage_resumes_to_the_same_model(fitted, tmp_path):
    """The stage sits between the autoencoder and the denoiser; a kill right after it keeps its record and file."""
    from nwb_ldns.data import load_session
    from nwb_ldns.train import fit

    root, _, model = fitted
    session = load_session(root / "refractory.nwb")
    calls = []

    def stop_at_diffusion(stage, epoch):
        calls.append(stage)
        if stage == "diffusion":
            raise KeyboardInterrupt

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(session, tmp_path / "k.ldns", preset="tiny", overrides=FAST, progress=False,
                on_epoch_end=stop_at_diffusion)
        resumed = fit(session, tmp_path / "k.ldns", resume=True, progress=False)
    finally:
        torch.set_num_threads(previous)
    for name in ("autoencoder.safetensors", "spike_history.safetensors", "denoiser.safetensors"):
        assert (tmp_path / "k.ldns" / name).read_bytes() == (root / "m.ldns" / name).read_bytes(), name
    log = [json.loads(line) for line in (tmp_path / "k.ldns" / "training_log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("stage") == "spike_history") == 1
    assert resumed.weights_sha256 == model.weights_sha256
