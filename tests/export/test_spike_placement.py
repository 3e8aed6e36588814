"""`--spike-placement uniform`: random spike times inside their bins, reproducible from the seed, re-binning to the
generated counts, named in the Units description; `even` stays the default."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from nwb_ldns.errors import OptionError
from nwb_ldns.export import write_synthetic
from nwb_ldns.export.spikes import spike_arrays_to_counts, spike_time_blocks


def _units_and_trials(path):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units
        times = np.asarray(units["spike_times"].target.data[:])
        index = np.asarray(units["spike_times_index"].data[:])
        starts = np.asarray(nwb.trials["start_time"].data[:])
        return times, index, starts, units.description


@pytest.fixture(scope="module")
def placed(generated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("placement")
    return {name: write_synthetic(generated, folder / f"{name}.nwb", spike_placement=placement)
            for name, placement in (("even", "even"), ("uniform", "uniform"), ("uniform_again", "uniform"))}


def test_uniform_placement_rebins_to_the_counts_stays_inside_and_is_reproducible(generated, placed):
    counts = generated["counts"].values
    bin_width = float(generated.attrs["bin_width"])
    even_times, _, _, _ = _units_and_trials(placed["even"])
    times, index, starts, _ = _units_and_trials(placed["uniform"])
    again, _, _, _ = _units_and_trials(placed["uniform_again"])
    assert np.array_equal(times, again)  # the same seed attr: the same times
    assert len(times) == len(even_times) and not np.allclose(times, even_times)  # not the even rule
    rebinned = spike_arrays_to_counts(times, index, starts, counts.shape[1], bin_width)
    assert np.array_equal(rebinned, counts)
    # strictly inside its bin: never on a bin edge, and spread over the bin rather than at the even positions
    trial = np.searchsorted(starts, times, side="right") - 1
    position = (times - starts[trial]) / bin_width
    offset = position - np.floor(position)
    assert offset.min() > 0 and offset.max() < 1
    assert np.mean(np.isclose(offset, 0.5, atol=1e-3)) < 0.5  # the even rule puts every lone spike at the middle
    for unit in np.split(times, index[:-1]):
        assert np.all(np.diff(unit) >= 0)  # each unit's times sorted, as NWB expects


def test_the_units_description_names_the_placement(placed):
    assert "evenly" in _units_and_trials(placed["even"])[3] and "'even'" in _units_and_trials(placed["even"])[3]
    description = _units_and_trials(placed["uniform"])[3]
    assert "uniformly at random" in description and "'uniform'" in description and "seed 0" in description


def test_uniform_times_do_not_depend_on_the_block_size(generated):
    counts = generated["counts"].values.astype(np.int64)
    n_trials, n_bins, n_units = counts.shape
    starts = np.arange(n_trials) * (n_bins * 0.01 + 0.1)

    def read(units, trials):
        return counts[trials, :, units]

    totals = counts.sum(axis=(0, 1))
    whole = np.concatenate(list(spike_time_blocks(read, counts.shape, 0.01, starts, totals, placement="uniform",
                                                  seed=3)))
    pieces = np.concatenate(list(spike_time_blocks(read, counts.shape, 0.01, starts, totals, budget_cells=n_bins * 2,
                                                   placement="uniform", seed=3)))  # one unit, 2 trials a block
    other_seed = np.concatenate(list(spike_time_blocks(read, counts.shape, 0.01, starts, totals,
                                                       placement="uniform", seed=4)))
    assert np.array_equal(whole, pieces)
    assert not np.array_equal(whole, other_seed)


def test_an_unknown_placement_is_refused(generated, tmp_path):
    with pytest.raises(OptionError, match="even.*uniform"):
        write_synthetic(generated, tmp_path / "x.nwb", spike_placement="jitter")
    assert not (tmp_path / "x.nwb").exists()


def test_baseline_cli_writes_uniform_placement(mock_session_path, tmp_path):
    from nwb_ldns.cli.main import cli

    out = tmp_path / "psth.nwb"
    result = CliRunner().invoke(cli, ["baseline", "psth", str(mock_session_path), "--out", str(out), "--n", "6",
                                      "--spike-placement", "uniform", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "uniformly at random" in _units_and_trials(out)[3] and "seed 2" in _units_and_trials(out)[3]
    bad = CliRunner().invoke(cli, ["baseline", "psth", str(mock_session_path), "--out", str(tmp_path / "b.nwb"),
                                   "--spike-placement", "jitter"])
    assert bad.exit_code == 2 and "jitter" in bad.output
