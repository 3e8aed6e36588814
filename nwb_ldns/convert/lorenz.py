"""Write the LDNS Lorenz benchmark as an NWB session (simulation in lorenz_sim.py).

Layout: trial k occupies [k * (n_bins * bin_width + TRIAL_GAP_S), ... + n_bins * bin_width) on one timeline; spikes
are a Units table (one unit per simulated neuron); trials carry the reference's train/val/test split; the ground
truth (3-d latents, Poisson rates, readout matrix and bias) lives in processing/misc.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from nwb_ldns.convert import lorenz_sim
from nwb_ldns.convert.nwb_common import gzip, new_nwbfile, trials_table, units_from_counts
from nwb_ldns.data.windows import SPLIT_COLUMN
from nwb_ldns.errors import OptionError
from nwb_ldns.limits import check_fits
from nwb_ldns.fileio import atomic_output, hdf5_writer

TRIAL_GAP_S = 0.1  # silence between consecutive trials on the session timeline
# peak bytes of a simulation per (trial, bin): float32 latents and a float64 bin start; per (trial, bin, neuron):
# float32 rates, the einsum and Poisson intermediates, int32 counts and the spike times built from them
BYTES_PER_BIN = 24
BYTES_PER_BIN_AND_NEURON = 20
# DANDI has no species for simulations; NCBI Taxonomy's "synthetic construct" (taxon 32630) passes the species
# checks and says honestly that no animal was recorded (session_description repeats it in words).
SYNTHETIC_SPECIES = "http://purl.obolibrary.org/obo/NCBITaxon_32630"
SESSION_START = datetime(2024, 7, 11, tzinfo=timezone.utc)  # nominal: arXiv 2407.08751 (LDNS) release date
LDNS_PAPER = "https://doi.org/10.48550/arXiv.2407.08751"


def trial_starts(n_trials: int, n_bins: int, bin_width: float, gap: float = TRIAL_GAP_S) -> np.ndarray:
    """Start time (s) of each trial: k * (n_bins * bin_width + gap), rounded to 1 us like the spike times."""
    return np.round(np.arange(n_trials) * (n_bins * bin_width + gap), 6)


def _check_options(n_trials: int, n_neurons: int, n_bins: int, seed: int, bin_width: float) -> None:
    if n_trials < 10:
        raise OptionError(f"--trials must be at least 10 so every split (70/10/20) gets a trial, got {n_trials}")
    if n_neurons < 1:
        raise OptionError(f"--neurons must be a positive integer, got {n_neurons}")
    if n_bins < 2:
        raise OptionError(f"--bins must be at least 2 (latents are z-scored over time), got {n_bins}")
    if not 0 <= seed < 2**32:
        raise OptionError(f"--seed must be an integer in [0, 2**32), got {seed}")
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise OptionError(f"--bin-width must be a positive number of seconds, got {bin_width}")
    check_fits(float(n_trials) * n_bins * (BYTES_PER_BIN + BYTES_PER_BIN_AND_NEURON * n_neurons),
               f"simulating {n_trials:,} trials x {n_bins:,} bins x {n_neurons:,} neurons",
               "lower --trials, --bins or --neurons (the benchmark uses 5000 x 256 x 128)")


def _parameters(n_trials: int, n_neurons: int, n_bins: int, seed: int, bin_width: float) -> dict:
    return dict(
        recipe="LDNS Lorenz benchmark (mackelab/LDNS ldns/data/latent_attractor.py), re-simulated",
        n_trials=n_trials, n_neurons=n_neurons, n_bins=n_bins, seed=seed, bin_width=bin_width,
        trial_gap=TRIAL_GAP_S, sigma=lorenz_sim.SIGMA, rho=lorenz_sim.RHO, beta=lorenz_sim.BETA,
        default_ic=lorenz_sim.DEFAULT_IC.tolist(), ic_scale=lorenz_sim.IC_SCALE, period=lorenz_sim.PERIOD,
        points_per_period=100, burn_in=lorenz_sim.BURN_IN, solver="scipy solve_ivp Radau, rtol 1e-3, atol 1e-6",
        first_step=lorenz_sim.FIRST_STEP, mean_rate=lorenz_sim.MEAN_RATE, softplus_beta=lorenz_sim.SOFTPLUS_BETA,
        split="torch.randperm(n, Generator().manual_seed(seed)) -> int(0.7n) train / int(0.1n) val / rest test",
    )


def _build_nwbfile(sim: lorenz_sim.LorenzSimulation, params: dict):
    from hdmf.common import DynamicTable, VectorData
    from pynwb import TimeSeries
    from pynwb.file import Subject

    n_trials, n_bins, n_neurons = sim.counts.shape
    bin_width = params["bin_width"]
    starts = trial_starts(n_trials, n_bins, bin_width)
    nwb = new_nwbfile(
        session_description=(
            "SIMULATED data, no animal was recorded: the Lorenz-attractor benchmark of LDNS (Kapoor, Schulz et al., "
            f"NeurIPS 2024). {n_trials} trajectories of a 3-d Lorenz system, z-scored per trial, drive "
            f"{n_neurons} Poisson neurons through a random unit-norm readout and softplus(beta=2) rates; "
            f"{n_bins} bins per trial with a nominal bin width of {bin_width} s (the benchmark's time steps have "
            f"no physical unit); trials are laid end to end with {TRIAL_GAP_S} s gaps."
        ),
        session_start_time=SESSION_START,
        session_id=f"lorenz-seed{params['seed']}",
        experiment_description=(
            "Synthetic benchmark for latent diffusion models of spiking data; the ground-truth latents and rates "
            "are stored in processing/misc."
        ),
        keywords=["synthetic", "simulation", "Lorenz attractor", "Poisson spiking", "LDNS", "benchmark"],
        institution="nwb-ldns (simulated data)",
        related_publications=[LDNS_PAPER],
        notes="Simulation parameters (JSON): " + json.dumps(params),
    )
    nwb.subject = Subject(
        subject_id="lorenz",
        species=SYNTHETIC_SPECIES,
        sex="U",
        age="P0D",
        description=(
            "Not an animal: a simulated population (species = NCBI Taxonomy 'synthetic construct'; sex unknown and "
            "age 0 days because there is no subject)."
        ),
    )
    nwb.units = units_from_counts(
        sim.counts, bin_width, starts,
        description=(
            f"{n_neurons} simulated Poisson neurons; unit id = neuron index (readout rows are sorted by their first "
            "weight, as in the reference)."
        ),
    )
    split_counts = {name: int((sim.split == name).sum()) for name in ("train", "val", "test")}
    nwb.trials = trials_table(
        starts, np.round(starts + n_bins * bin_width, 6),
        description=f"One row per simulated trajectory; splits {split_counts}.",
        columns={
            SPLIT_COLUMN: ("train/val/test, the reference's seeded random_split (70/10/20)", sim.split.tolist()),
        },
    )
    misc = nwb.create_processing_module(
        name="misc", description="Ground truth of the Lorenz simulation: latents, Poisson rates, readout and bias."
    )
    bin_starts = np.round((starts[:, None] + np.arange(n_bins)[None, :] * bin_width).ravel(), 6)
    rates = TimeSeries(
        name="rates",
        description=(
            "Ground-truth Poisson mean spike count of each neuron in each bin, softplus_2(latents @ readout.T + bias); "
            "rows = bins of all trials concatenated (trial-major), columns = units in Units id order; timestamps are "
            "bin starts. Reshape to (trial, time, unit) with the trials table."
        ),
        data=gzip(sim.rates.reshape(-1, n_neurons), chunks=(n_bins, n_neurons), shuffle=True),
        unit="spikes per bin",
        timestamps=gzip(bin_starts, chunks=(min(len(bin_starts), 1 << 17),)),
    )
    latents = TimeSeries(
        name="latents",
        description=(
            "Ground-truth Lorenz state (x, y, z), z-scored per trial and coordinate; same rows as 'rates'."
        ),
        data=gzip(sim.latents.reshape(-1, 3), chunks=(n_bins, 3), shuffle=True),
        unit="a.u. (z-scored)",
        timestamps=rates,
    )
    readout = DynamicTable(
        name="readout",
        description="Readout of the observation model: log-rate = latents @ weight.T + bias; row i = unit id i.",
        id=np.arange(n_neurons),
        columns=[
            VectorData(name="weight", description="unit-norm readout weights for (x, y, z)", data=sim.readout),
            VectorData(name="bias", description="bias log(0.3), same for every unit",
                       data=np.full(n_neurons, sim.bias)),
        ],
    )
    misc.add(rates)
    misc.add(latents)
    misc.add(readout)
    return nwb


def convert_lorenz(
    out_path: str | Path,
    *,
    n_trials: int = 5000,
    n_neurons: int = 128,
    n_bins: int = 256,
    seed: int = 42,
    bin_width: float = 0.01,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Simulate the LDNS Lorenz benchmark and write it as one NWB file; returns the path written."""
    from pynwb import NWBHDF5IO
    from nwb_ldns.progress import bar as progress_bar

    _check_options(n_trials, n_neurons, n_bins, seed, bin_width)
    out_path = Path(out_path)
    with atomic_output(out_path, overwrite=overwrite, kind="nwb") as tmp:
        sim = lorenz_sim.simulate_lorenz(n_trials, n_neurons, n_bins, seed, progress=progress)
        with progress_bar(total=2, desc="Building NWB (spike times)", unit="step", disable=not progress) as bar:
            nwb = _build_nwbfile(sim, _parameters(n_trials, n_neurons, n_bins, seed, bin_width))
            bar.update(1)
            bar.set_description("Writing NWB (gzip)")
            with hdf5_writer(tmp) as h5, NWBHDF5IO(file=h5, mode="w") as io:
                io.write(nwb)
            bar.update(1)
    return out_path
