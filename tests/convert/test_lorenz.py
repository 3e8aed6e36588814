"""The Lorenz converter: the simulation follows the reference recipe and the NWB file holds it exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nwb_ldns.convert import convert_lorenz
from nwb_ldns.convert import lorenz_sim
from nwb_ldns.convert.lorenz import TRIAL_GAP_S, trial_starts
from nwb_ldns.errors import OptionError, OutputExistsError
from tests.convert.helpers import bin_units

SMALL = dict(n_trials=12, n_neurons=16, n_bins=64, seed=3)


@pytest.fixture(scope="module")
def sim() -> lorenz_sim.LorenzSimulation:
    return lorenz_sim.simulate_lorenz(**SMALL, workers=1, progress=False)


@pytest.fixture(scope="module")
def lorenz_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lorenz") / "lorenz.nwb"
    assert convert_lorenz(path, **SMALL, bin_width=0.01, progress=False) == path
    return path


def test_latents_are_zscored_per_trial(sim):
    assert sim.latents.shape == (12, 64, 3) and sim.latents.dtype == np.float32
    np.testing.assert_allclose(sim.latents.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(sim.latents.std(axis=1), 1.0, atol=1e-5)


def test_initial_conditions_follow_numpy_global_seed():
    np.random.seed(5)
    expected = lorenz_sim.DEFAULT_IC + 2.0 * np.random.randn(7, 3)
    np.testing.assert_array_equal(lorenz_sim.initial_conditions(7, 5), expected)


def test_readout_rows_unit_norm_and_sorted(sim):
    assert sim.readout.shape == (16, 3)
    np.testing.assert_allclose(np.linalg.norm(sim.readout, axis=1), 1.0, atol=1e-6)
    assert np.all(np.diff(sim.readout[:, 0]) >= 0)
    assert sim.bias == float(np.float32(np.log(0.3)))


def test_rates_are_softplus_beta2_of_readout(sim):
    expected = np.log1p(np.exp(2.0 * (sim.latents @ sim.readout.T + sim.bias))) / 2.0
    np.testing.assert_allclose(sim.rates, expected, rtol=1e-5, atol=1e-6)
    assert sim.counts.dtype.kind == "i" and (sim.counts >= 0).all()


def test_realised_rate_is_plausible():
    # the reference measured ~0.14 spikes/bin (not the nominal 0.3) on 300 trials x 256 bins x 128 neurons
    small = lorenz_sim.simulate_lorenz(40, 128, 256, 42, workers=1, progress=False)
    assert 0.10 < small.counts.mean() < 0.19
    assert 0.10 < small.rates.mean() < 0.19


def test_splits_match_torch_random_split():
    n = 103
    split = lorenz_sim.split_assignment(n, 42)
    n_train, n_val = int(0.7 * n), int(0.1 * n)
    assert [(split == s).sum() for s in ("train", "val", "test")] == [n_train, n_val, n - n_train - n_val]
    parts = torch.utils.data.random_split(range(n), [n_train, n_val, n - n_train - n_val],
                                          generator=torch.Generator().manual_seed(42))
    for name, part in zip(("train", "val", "test"), parts):
        assert sorted(part.indices) == np.flatnonzero(split == name).tolist()


def test_same_seed_same_arrays_and_parallel_equals_serial(sim):
    again = lorenz_sim.simulate_lorenz(**SMALL, workers=2, progress=False)
    for name in ("latents", "rates", "counts", "readout", "initial_conditions", "split"):
        np.testing.assert_array_equal(getattr(sim, name), getattr(again, name), err_msg=name)
    other = lorenz_sim.simulate_lorenz(**{**SMALL, "seed": 4}, workers=1, progress=False)
    assert not np.array_equal(sim.counts, other.counts)


def test_nwb_file_holds_the_simulation_exactly(lorenz_file, sim):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(lorenz_file), "r") as io:
        nwb = io.read()
        starts = nwb.trials["start_time"].data[:]
        stops = nwb.trials["stop_time"].data[:]
        np.testing.assert_allclose(starts, np.arange(12) * (64 * 0.01 + TRIAL_GAP_S), atol=1e-9)
        np.testing.assert_allclose(stops - starts, 0.64, atol=1e-9)
        assert list(nwb.trials["data_split"].data[:]) == sim.split.tolist()
        assert nwb.units.resolution == 1e-6
        assert list(nwb.units.id[:]) == list(range(16))
        spikes = [nwb.units.get_unit_spike_times(i) for i in range(16)]
        np.testing.assert_array_equal(bin_units(spikes, starts, 64, 0.01), sim.counts)
        misc = nwb.processing["misc"]
        np.testing.assert_array_equal(misc["rates"].data[:].reshape(12, 64, 16), sim.rates)
        np.testing.assert_array_equal(misc["latents"].data[:].reshape(12, 64, 3), sim.latents)
        assert misc["rates"].data.compression == "gzip"
        np.testing.assert_allclose(misc["rates"].timestamps[:64], starts[0] + np.arange(64) * 0.01)
        np.testing.assert_array_equal(misc["readout"]["weight"].data[:], sim.readout)
        assert "SIMULATED" in nwb.session_description
        assert nwb.session_start_time.tzinfo is not None
        assert nwb.subject.species.endswith("NCBITaxon_32630")


def test_nwb_file_is_dandi_clean(lorenz_file, inspect_dandi):
    assert inspect_dandi(lorenz_file) == []


def test_trial_starts_rule():
    np.testing.assert_allclose(trial_starts(3, 256, 0.01), [0.0, 2.66, 5.32])


def test_existing_output_refused_then_overwritten(lorenz_file, tmp_path):
    target = tmp_path / "exists.nwb"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert_lorenz(target, **SMALL, progress=False)
    assert target.read_bytes() == b"keep me"
    with pytest.raises(OutputExistsError, match="not an NWB file written by nwb-ldns"):  # not ours to replace
        convert_lorenz(target, **SMALL, progress=False, overwrite=True)
    assert target.read_bytes() == b"keep me"
    target.unlink()
    convert_lorenz(target, **SMALL, progress=False)
    first = target.stat().st_mtime_ns, target.stat().st_ino
    convert_lorenz(target, **{**SMALL, "seed": 1}, progress=False, overwrite=True)  # our own output: replaced
    assert target.stat().st_size > 10_000 and (target.stat().st_mtime_ns, target.stat().st_ino) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


@pytest.mark.parametrize(
    "bad, match",
    [({"n_trials": 5}, "--trials"), ({"n_bins": 1}, "--bins"), ({"bin_width": 0.0}, "--bin-width"),
     ({"bin_width": float("nan")}, "--bin-width"), ({"seed": -1}, "--seed"), ({"n_neurons": 0}, "--neurons")],
)
def test_bad_options_raise_option_error(tmp_path, bad, match):
    with pytest.raises(OptionError, match=match):
        convert_lorenz(tmp_path / "x.nwb", **{**SMALL, **bad}, progress=False)
    assert not (tmp_path / "x.nwb").exists()


def test_cli_writes_file_and_refuses_existing(tmp_path):
    from nwb_ldns.cli.main import cli

    runner = CliRunner()
    out = tmp_path / "cli.nwb"
    args = ["convert", "lorenz", str(out), "--trials", "10", "--neurons", "4", "--bins", "16", "--seed", "1",
            "--bin-width", "0.02", "--no-progress"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and "wrote" in result.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--overwrite" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_cli_help_documents_every_option():
    from nwb_ldns.cli.main import cli

    result = CliRunner().invoke(cli, ["convert", "lorenz", "--help"])
    assert result.exit_code == 0
    for option in ("--trials", "--neurons", "--bins", "--seed", "--bin-width", "--overwrite"):
        assert option in result.output
