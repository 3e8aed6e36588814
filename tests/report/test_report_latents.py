"""The report's latent figures (ground truth of a Lorenz file, autoencoder vs diffusion latents via
`evaluate --model`) and the trial-length histogram of variable-length sessions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse: one torch thread

FAST = {"autoencoder.epochs": 2, "autoencoder.batch_size": 8, "diffusion.epochs": 2, "diffusion.batch_size": 8,
        "diffusion.num_steps": 20}


@pytest.fixture(scope="module")
def lorenz(tmp_path_factory):
    """(session file, tiny model dir, generated file with latents): 40 Lorenz trials x 32 bins x 8 neurons."""
    from nwb_ldns.convert import convert_lorenz
    from nwb_ldns.data import load_session
    from nwb_ldns.errors import GeneratedRangeWarning
    from nwb_ldns.export import write_synthetic
    from nwb_ldns.train import fit

    root = tmp_path_factory.mktemp("lorenz")
    session = convert_lorenz(root / "lz.nwb", n_trials=40, n_neurons=8, n_bins=32, progress=False)
    model = fit(load_session(session), root / "lz.ldns", preset="tiny", overrides=FAST, progress=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratedRangeWarning)  # a 2-epoch model: its samples are out of range
        generated = model.sample(12, seed=0, sampler="ddim", steps=5, progress=False)
    synth = write_synthetic(generated, root / "lz_synth.nwb")
    return session, root / "lz.ldns", synth


def test_ground_truth_latents_follow_the_trial_ids(lorenz):
    from nwb_ldns.data import load_session
    from nwb_ldns.report.latents import ground_truth_latents

    session, _, _ = lorenz
    real = load_session(session)
    every = ground_truth_latents(session, real)
    assert every.shape == (40, 32, 3)
    np.testing.assert_allclose(every.mean(axis=1), 0.0, atol=1e-4)  # z-scored per trial and coordinate
    picked = ground_truth_latents(session, real.isel(trial=[7, 2]))
    np.testing.assert_array_equal(picked, every[[7, 2]])
    assert ground_truth_latents(session, real.isel(time=slice(0, 16))) is None  # another window: no match


def test_generated_latents_read_back(lorenz):
    from nwb_ldns.data.generated import read_generated
    from nwb_ldns.report.latents import generated_latents

    _, model_dir, synth = lorenz
    ds = read_generated(synth)
    z = generated_latents(synth, ds)
    assert z.shape[:2] == (12, 32) and np.isfinite(z).all() and np.abs(z).max() > 0


def test_evaluate_report_with_model_draws_the_latent_figures(lorenz, tmp_path):
    from nwb_ldns.cli.main import cli

    session, model_dir, synth = lorenz
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(session), str(synth), "--bootstrap", "2", "--model",
                                      str(model_dir), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert {"ground_truth_latents.png", "latents.png"} <= {p.name for p in out.glob("*.png")}
    page = (out / "index.html").read_text()
    assert page.index('id="verdict"') < page.index("Statistics (lower is better)")  # the verdict comes first
    assert "Ground-truth latents" in page and "Autoencoder vs diffusion latents" in page
    without = CliRunner().invoke(cli, ["evaluate", str(session), str(synth), "--bootstrap", "0",
                                       "--report", str(tmp_path / "plain")])
    assert without.exit_code == 0, without.output
    plain = (tmp_path / "plain" / "index.html").read_text()
    assert not (tmp_path / "plain" / "latents.png").exists() and "evaluate --model MODEL_DIR" in plain
    refused = CliRunner().invoke(cli, ["evaluate", str(session), str(synth), "--model", str(model_dir)])
    assert refused.exit_code == 2 and "--report" in refused.output


def test_variable_length_report_has_trial_lengths(tmp_path):
    from nwb_ldns.data.schema import make_session_dataset
    from nwb_ldns.metrics.evaluate import evaluate
    from nwb_ldns.report import write_report

    rng = np.random.default_rng(0)

    def session(n, split, seed):
        lengths = np.random.default_rng(seed).integers(12, 30, n)
        mask = np.arange(30)[None, :] < lengths[:, None]
        counts = rng.poisson(0.4, (n, 30, 6)).astype(np.float32) * mask[..., None]
        return make_session_dataset(counts, 0.01, mask=mask, split=np.asarray(split))

    real = session(40, ["train"] * 28 + ["test"] * 12, 1)
    generated = [session(16, ["generated"] * 16, 2)]
    result = evaluate(real, generated, names=["var"], n_resamples=2)
    write_report(tmp_path / "r", real, generated, result)
    assert (tmp_path / "r" / "trial_lengths.png").exists()
    assert "Trial lengths" in (tmp_path / "r" / "index.html").read_text()
