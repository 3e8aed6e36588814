"""Small NWB sessions built in code, in the layout real files use, for tests and examples.

Nothing here downloads anything: a session is Poisson spikes from smooth random rates, written as a real pynwb
Units table (numpy-backed columns) with a trials table, a Subject and DANDI-clean metadata.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import numpy as np

from nwb_ldns.data.windows import SPLIT_COLUMN
from nwb_ldns.mc_maze_fixture import MazeTruth, write_mc_maze_like  # noqa: F401 - the MC_Maze stand-in


def counts_to_spike_times(counts: np.ndarray, bin_width: float, trial_starts: np.ndarray) -> list[np.ndarray]:
    """Per-unit sorted spike times from (trial, time, unit) counts (the shared rule, as one array per unit).

    Rule (the LDNS evaluation convention): a bin [t0, t0 + dt) holding k spikes yields k spikes evenly spaced
    strictly inside it, t0 + dt * j / (k + 1) for j = 1..k; times are rounded to 1 microsecond. The one
    implementation lives in `nwb_ldns.export.spikes.counts_to_spike_arrays`.
    """
    from nwb_ldns.export.spikes import counts_to_spike_arrays

    times, index = counts_to_spike_arrays(counts, bin_width, np.asarray(trial_starts, dtype=np.float64))
    return np.split(times, index[:-1])


def smooth_rates(rng: np.random.Generator, n_trials: int, n_bins: int, n_units: int,
                 amplitude: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(rates[trial, time, unit], phase[trial]): one sine cycle per trial, random phase per trial, gain per unit.

    Shared by every small test session so they all have the same, learnable structure.
    """
    t = np.arange(n_bins)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n_trials, 1, 1))
    gains = rng.uniform(0.2, 1.0, size=(1, 1, n_units))
    return amplitude * (1.0 + np.sin(2 * np.pi * t / n_bins + phase)) * gains, phase[:, 0, 0]


def write_mock_session(
    path: str | Path,
    *,
    n_trials: int = 24,
    n_bins: int = 32,
    n_units: int = 8,
    bin_width: float = 0.01,
    gap: float = 0.1,
    seed: int = 0,
    with_split: bool = True,
    trial_columns: bool = True,
) -> np.ndarray:
    """Write a small NWB session with Units + trials; return the (trial, time, unit) counts it encodes."""
    rng = np.random.default_rng(seed)
    rates, _ = smooth_rates(rng, n_trials, n_bins, n_units, amplitude=0.3)
    counts = rng.poisson(rates).astype(np.int64)
    counts[:, n_bins // 2, :] += 1  # every unit spikes in every trial
    trial_len = n_bins * bin_width
    columns: dict[str, tuple[str, list]] = {}
    if trial_columns:
        starts = np.round(np.arange(n_trials) * (trial_len + gap), 6)
        columns["condition"] = ("condition label", [f"c{i % 3}" for i in range(n_trials)])
        columns["go_time"] = ("go cue time (s)", [float(s + trial_len / 4) for s in starts])
    write_counts_session(path, counts, bin_width, gap=gap, columns=columns, with_split=with_split,
                         description="Mock session for nwb-ldns tests: Poisson spikes from smooth rates.")
    return counts


def _split_label(i: int, n_trials: int) -> str:
    return "train" if i < int(0.7 * n_trials) else ("val" if i < int(0.85 * n_trials) else "test")


def write_counts_session(path: str | Path, counts: np.ndarray, bin_width: float, *, gap: float = 0.1,
                         columns: dict[str, tuple[str, list]] | None = None, with_split: bool = True,
                         description: str = "Simulated session for nwb-ldns.") -> None:
    """Write counts[trial, time, unit] as an NWB session: Units (spike times), trials with extra columns, split."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject
    from pynwb.misc import Units
    from hdmf.common import VectorData, VectorIndex

    n_trials, n_bins, n_units = counts.shape
    trial_len = n_bins * bin_width
    starts = np.round(np.arange(n_trials) * (trial_len + gap), 6)
    nwb = NWBFile(
        session_description=description,
        identifier=str(uuid4()),
        session_start_time=datetime(2024, 1, 2, 10, tzinfo=timezone.utc),
        experimenter=["Doe, Jane"],
        lab="nwb-ldns",
        institution="nwb-ldns",
        experiment_description="Synthetic test data.",
        keywords=["synthetic", "test"],
        session_id="mock001",
    )
    nwb.subject = Subject(
        subject_id="mock01", species="Mus musculus", sex="M", age="P90D", description="Simulated test subject."
    )
    spike_lists = counts_to_spike_times(counts, bin_width, starts)
    flat = np.concatenate(spike_lists)
    index = np.cumsum([len(s) for s in spike_lists])
    spike_times = VectorData(name="spike_times", description="spike times (s)", data=flat)
    spike_index = VectorIndex(name="spike_times_index", data=index, target=spike_times)
    nwb.units = Units(
        name="units",
        description="mock units",
        id=np.arange(n_units) + 100,
        columns=[spike_times, spike_index],
        resolution=1e-6,
    )
    columns = dict(columns or {})
    for name, (text, _) in columns.items():
        nwb.add_trial_column(name=name, description=text)
    if with_split:
        nwb.add_trial_column(name=SPLIT_COLUMN, description="train/val/test")
    for i, start in enumerate(starts):
        row = dict(start_time=float(start), stop_time=float(start + trial_len))
        row.update({name: values[i] for name, (_, values) in columns.items()})
        if with_split:
            row[SPLIT_COLUMN] = _split_label(i, n_trials)
        nwb.add_trial(**row)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def reach_like_counts(n_trials: int = 210, n_bins: int = 20, n_units: int = 61, n_directions: int = 7,
                      bin_width: float = 0.02, n_shared: int = 2, shared_scale: float = 0.3, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(counts[trial, time, unit], direction index per trial) of a simulated reach session.

    Units are cosine-tuned to the reach direction with a movement-locked time course (like PMd/M1), and share
    smooth trial-to-trial fluctuations (n_shared latent AR(1) processes with random loadings): what a PSTH model
    cannot capture and a latent model should.
    """
    rng = np.random.default_rng(seed)
    direction = np.arange(n_trials) % n_directions
    rng.shuffle(direction)
    theta = 2 * np.pi * direction / n_directions
    t = np.arange(n_bins)
    profile = np.exp(-0.5 * ((t - 0.55 * n_bins) / (0.2 * n_bins)) ** 2)  # movement-locked bump
    base = np.log(rng.uniform(5.0, 30.0, n_units) * bin_width)
    depth = rng.uniform(0.3, 1.2, n_units)
    preferred = rng.uniform(0, 2 * np.pi, n_units)
    tuning = depth[None, None, :] * np.cos(theta[:, None, None] - preferred[None, None, :]) * profile[None, :, None]
    x = np.zeros((n_trials, n_bins, n_shared))
    x[:, 0] = rng.normal(size=(n_trials, n_shared))
    for k in range(1, n_bins):  # smooth shared fluctuations, stationary std 1
        x[:, k] = 0.9 * x[:, k - 1] + np.sqrt(1 - 0.81) * rng.normal(size=(n_trials, n_shared))
    loading = rng.normal(scale=shared_scale, size=(n_shared, n_units))
    rates = np.minimum(np.exp(base[None, None, :] + tuning + x @ loading), 150.0 * bin_width)  # <= 150 Hz
    return rng.poisson(rates).astype(np.int64), direction


def write_reach_like_session(path: str | Path, **options) -> np.ndarray:
    """Write `reach_like_counts(**options)` as NWB (trials column `condition` = "dir<k>"); return the counts."""
    counts, direction = reach_like_counts(**options)
    write_counts_session(path, counts, options.get("bin_width", 0.02),
                         columns={"condition": ("reach direction", [f"dir{d}" for d in direction])},
                         description="Simulated reach session: direction-tuned units with shared fluctuations.")
    return counts


def refractory_counts(n_trials: int, n_bins: int, n_units: int, *, dead_bins: int = 2, base: float = 0.3,
                      depth: float = 0.2, phase_per_trial: bool = False, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(counts, rates): at most one spike per bin from smooth rates (base + depth * sine, one phase per unit, or per
    unit and trial), and none in the `dead_bins` bins after a spike: a refractory period Poisson sampling of the
    same rates violates, for the spike-history tests and benchmark."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (n_trials if phase_per_trial else 1, 1, n_units))
    rates = np.broadcast_to(base + depth * np.sin(2 * np.pi * t / n_bins + phase), (n_trials, n_bins, n_units))
    counts = np.zeros((n_trials, n_bins, n_units), dtype=np.int64)
    dead = np.zeros((n_trials, n_units), dtype=int)
    for b in range(n_bins):
        spikes = (rng.random((n_trials, n_units)) < rates[:, b]) & (dead == 0)
        counts[:, b] = spikes
        dead = np.where(spikes, dead_bins, np.maximum(dead - 1, 0))
    return counts, np.ascontiguousarray(rates)


def short_isi_fraction(counts: np.ndarray, below: int) -> float:
    """Fraction of successive spikes of a unit within a trial closer than `below` bins (two in one bin: 0)."""
    short = total = 0
    for trial in np.asarray(counts, dtype=np.int64).transpose(0, 2, 1).reshape(-1, np.shape(counts)[1]):
        gaps = np.diff(np.repeat(np.arange(len(trial)), trial))
        short, total = short + int((gaps < below).sum()), total + len(gaps)
    return short / max(total, 1)
