"""A small session in the published MC_Maze layout (DANDI:000128, the NLB train file), built in code.

Why: the real file (690 MB) cannot be downloaded on our machines, so the monkey reader, angle and velocity
conditioning and the monkey presets are tested on this stand-in. It follows data-formats.md section 2.2/2.6: Units
with one `obs_intervals` row per trial, `electrodes` and `heldout`; trials with `move_onset_time`, the NLB `split`
('train'/'val'), maze columns and ragged `target_pos`/`barrier_pos`; `hand_pos`, `cursor_pos`, `eye_pos`
(SpatialSeries) and `hand_vel` (TimeSeries) at 1 kHz with explicit timestamps, NaN between trials and
`comments="columns=[x,y]"`. Unlike a random fixture its activity really depends on the reach: each unit is
cosine-tuned to the reach direction around movement onset, so conditioning on the angle or the velocity can be
checked against the truth returned by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import numpy as np

SAMPLE_RATE = 1000.0  # Hz, behaviour and the spike simulation grid
N_DIRECTIONS = 8  # reach targets on a circle, like the centre-out part of the maze set
TARGET_DISTANCE_MM = 100.0
PEAK_SPEED_MM_S = 450.0
MOVE_AFTER_ONSET_S = 0.75  # trials end this long after movement onset (the +450 ms window and +550 ms behaviour fit)
GAP_S = 0.3  # between trials: no spikes observed, behaviour NaN


@dataclass(frozen=True)
class MazeTruth:
    """What a correct reader must find, computed here independently of nwb_ldns.data."""

    start: np.ndarray  # (trials,) s
    stop: np.ndarray
    move_onset: np.ndarray
    split: np.ndarray  # NLB labels: 'train' / 'val'
    direction: np.ndarray  # true reach direction of each trial (radians)
    unit_ids: np.ndarray
    heldout: np.ndarray  # (units,) bool
    preferred: np.ndarray  # (units,) preferred direction (radians)
    spike_times: list[np.ndarray]  # per unit, sorted
    early_onset: np.ndarray  # (trials,) bool: onset < 250 ms after the trial start (the window leaves the trial)


def _speed_profile(t: np.ndarray) -> np.ndarray:
    """Bell-shaped reach speed (mm/s) against time from movement onset: peaks 180 ms after onset, lasts ~400 ms."""
    return PEAK_SPEED_MM_S * np.exp(-0.5 * ((t - 0.18) / 0.07) ** 2) * (t > -0.05)


def _tuning_drive(t: np.ndarray) -> np.ndarray:
    """Directional drive of the neurons against time from onset: rises 150 ms before onset (motor cortex leads the
    hand), peaks at +50 ms, decays by +400 ms."""
    return np.exp(-0.5 * ((t - 0.05) / 0.12) ** 2)


def _trial_times(rng: np.random.Generator, n_trials: int, n_early_onset: int) -> tuple[np.ndarray, ...]:
    target_on_delay = rng.uniform(0.25, 0.4, n_trials)
    delay = rng.integers(300, 700, n_trials)  # ms, target on -> go cue
    reaction = rng.integers(250, 400, n_trials)  # ms, go cue -> movement onset
    lead = target_on_delay + (delay + reaction) / 1000.0
    early = np.zeros(n_trials, dtype=bool)
    if n_early_onset:
        early[rng.choice(n_trials, size=n_early_onset, replace=False)] = True
        lead[early] = rng.uniform(0.12, 0.2, n_early_onset)  # onset logged too close to the trial start
        target_on_delay[early], delay[early], reaction[early] = 0.02, 0, np.round(lead[early] * 1e3 - 20)
    length = np.round(lead + MOVE_AFTER_ONSET_S, 3)
    start = np.round(0.5 + np.concatenate([[0.0], np.cumsum(length[:-1] + GAP_S)]), 3)
    move_onset = np.round(start + lead, 3)
    return start, np.round(start + length, 3), move_onset, target_on_delay, delay, reaction, early


def _simulate_spikes(rng, start, stop, move_onset, direction, preferred, baseline, depth, gain) -> list[np.ndarray]:
    """Inhomogeneous Poisson spikes on the 1 ms grid inside each trial, times uniform within their millisecond."""
    per_unit: list[list[np.ndarray]] = [[] for _ in preferred]
    for s, e, onset, theta, g in zip(start, stop, move_onset, direction, gain):
        grid = s + np.arange(int(round((e - s) * SAMPLE_RATE))) / SAMPLE_RATE
        drive = _tuning_drive(grid - onset)[:, None]
        rates = g * baseline * np.exp(depth * drive * np.cos(theta - preferred)[None, :])  # Hz, (time, unit)
        counts = rng.poisson(rates / SAMPLE_RATE)
        for unit in range(len(preferred)):
            bins = np.repeat(grid, counts[:, unit])
            jittered = np.round(bins + rng.uniform(0.0, 1.0 / SAMPLE_RATE, len(bins)), 6)
            per_unit[unit].append(np.minimum(jittered, np.round(e - 1e-6, 6)))  # strictly inside the trial
    return [np.sort(np.concatenate(chunks)) for chunks in per_unit]


def _behaviour(start, stop, move_onset, direction, end) -> dict[str, np.ndarray]:
    """1 kHz traces on one grid over [0, end): velocity and position inside trials, NaN between them."""
    times = np.round(np.arange(0.0, end, 1.0 / SAMPLE_RATE), 6)
    velocity = np.full((len(times), 2), np.nan)
    position = np.full((len(times), 2), np.nan)
    for s, e, onset, theta in zip(start, stop, move_onset, direction):
        inside = (times >= s) & (times < e)
        speed = _speed_profile(times[inside] - onset)
        velocity[inside] = speed[:, None] * np.array([np.cos(theta), np.sin(theta)])[None, :]
        position[inside] = np.cumsum(velocity[inside], axis=0) / SAMPLE_RATE
    eye = position + 2.0  # fixation on the hand, offset: a plausible series, not used by LDNS
    return {"times": times, "hand_vel": velocity, "hand_pos": position, "cursor_pos": position.copy(), "eye_pos": eye}


def write_mc_maze_like(path: str | Path, *, n_trials: int = 48, n_heldin: int = 14, n_heldout: int = 4,
                       n_early_onset: int = 2, val_fraction: float = 0.25, seed: int = 0) -> MazeTruth:
    """Write the fixture to path (HDF5 NWB); return the truth a reader must recover.

    n_early_onset trials have their movement onset under 250 ms after the trial start, so the -250..+450 ms window
    leaves the trial and its obs_intervals: a reader must drop and count them.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import SpatialSeries
    from pynwb.file import Subject
    from pynwb.misc import Units

    rng = np.random.default_rng(seed)
    n_units = n_heldin + n_heldout
    start, stop, move_onset, target_on_delay, delay, reaction, early = _trial_times(rng, n_trials, n_early_onset)
    condition = rng.integers(0, N_DIRECTIONS, n_trials)
    direction = 2 * np.pi * condition / N_DIRECTIONS + rng.normal(0.0, 0.05, n_trials)
    preferred = rng.uniform(0, 2 * np.pi, n_units)
    baseline = rng.uniform(5.0, 30.0, n_units)
    depth = rng.uniform(0.8, 1.6, n_units)
    gain = np.exp(rng.normal(0.0, 0.15, n_trials))  # shared trial-to-trial excitability
    spikes = _simulate_spikes(rng, start, stop, move_onset, direction, preferred, baseline, depth, gain)
    n_val = int(round(val_fraction * n_trials))
    split = np.array(["train"] * (n_trials - n_val) + ["val"] * n_val)
    unit_ids = np.sort(rng.choice(np.arange(1000, 3000), n_units, replace=False)).astype(np.int64)
    heldout = np.zeros(n_units, dtype=bool)
    heldout[rng.choice(n_units, n_heldout, replace=False)] = True

    start_time = datetime(2009, 9, 25, 0, 0, tzinfo=timezone(timedelta(hours=-7)))
    nwb = NWBFile(
        session_description="MC_Maze-like fixture written by nwb_ldns.mc_maze_fixture (simulated, not recorded)",
        identifier=str(uuid4()), session_start_time=start_time, timestamps_reference_time=start_time,
        session_id="full", institution="Stanford University", lab="Shenoy",
        experimenter=["Churchland, Mark M.", "Kaufman, Matthew T."],
        experiment_description="Center-out delayed reaching task with maze barriers",
        keywords=["motor cortex", "premotor cortex", "reaching", "macaque", "Neural Latents Benchmark"],
        related_publications=["https://doi.org/10.1016/j.neuron.2010.09.015"],
    )
    nwb.subject = Subject(subject_id="Jenkins", species="Macaca mulatta", sex="M", age="P8Y",
                          description="simulated stand-in for monkey J")
    groups = []
    for area in ("M1", "PMd"):
        device = nwb.create_device(name=f"electrode_array_{area}", description="96-electrode Utah array")
        groups.append(nwb.create_electrode_group(name=f"electrode_group_{area}", description=f"{area} array",
                                                 location=area, device=device))
    nwb.add_electrode_column(name="imp", description="impedance (ohm)")
    for electrode in range(n_units):
        group = groups[electrode % 2]
        nwb.add_electrode(x=float(electrode), y=0.0, z=0.0, imp=float(rng.uniform(1e5, 5e5)), location=group.location,
                          filtering="1000 Hz high-pass", group=group, group_name=group.name)

    nwb.units = Units(name="units", description="sorted units, held-in and held-out", resolution=1e-6,
                      electrode_table=nwb.electrodes)
    nwb.add_unit_column(name="heldout", description="held-out unit (NLB)")
    trial_intervals = np.stack([start, stop], axis=1)
    for unit in range(n_units):
        nwb.add_unit(id=int(unit_ids[unit]), spike_times=spikes[unit], obs_intervals=trial_intervals,
                     electrodes=[unit], heldout=bool(heldout[unit]))

    trial_columns = {
        "move_onset_time": "offline 'robust' movement onset (s)", "split": "NLB split",
        "trial_type": "maze number", "trial_version": "0: 1 target, no barrier; 1: barriers; 2: 3 targets",
        "maze_id": "maze id", "success": "trial was successful", "target_on_time": "target onset (s)",
        "go_cue_time": "go cue (s)", "rt": "reaction time, go cue to movement onset (ms)", "delay": "delay (ms)",
        "num_targets": "number of targets", "active_target": "index of the reached target in target_pos",
        "num_barriers": "number of barriers",
    }
    for name, description in trial_columns.items():
        nwb.add_trial_column(name=name, description=description)
    nwb.add_trial_column(name="target_pos", description="target positions (x, y) in mm", index=True)
    nwb.add_trial_column(name="barrier_pos", description="barriers (cx, cy, half-width, half-height)", index=True)
    for i in range(n_trials):
        n_targets = 1 if condition[i] % 2 == 0 else 3
        reached = np.round(TARGET_DISTANCE_MM * np.array([np.cos(direction[i]), np.sin(direction[i])]))
        others = [np.round(TARGET_DISTANCE_MM * np.array([np.cos(a), np.sin(a)])) for a in
                  direction[i] + np.array([2.2, -2.2])[: n_targets - 1]]
        n_barriers = int(condition[i] % 3)
        nwb.add_trial(
            start_time=float(start[i]), stop_time=float(stop[i]), move_onset_time=float(move_onset[i]),
            split=str(split[i]), trial_type=int(condition[i]), trial_version=min(n_targets - 1, 2) if n_barriers
            else 0, maze_id=int(100 + condition[i]), success=True,
            target_on_time=float(np.round(start[i] + target_on_delay[i], 3)),
            go_cue_time=float(np.round(move_onset[i] - reaction[i] / 1000.0, 3)), rt=int(reaction[i]),
            delay=int(delay[i]), num_targets=n_targets, active_target=0, num_barriers=n_barriers,
            target_pos=np.array([reached, *others], dtype=np.int16),
            barrier_pos=rng.integers(-80, 80, (max(n_barriers, 1), 4)).astype(np.int64),
        )

    traces = _behaviour(start, stop, move_onset, direction, end=float(stop[-1]) + GAP_S)
    module = nwb.create_processing_module(name="behavior", description="behavioural data")
    timestamps = H5DataIO(traces["times"], compression="gzip")
    descriptions = {"hand_pos": "Monkey hand position in mm", "cursor_pos": "Cursor position in mm. First column x, "
                    "second column y", "eye_pos": "Monkey eye position in mm"}
    first = None
    for name, description in descriptions.items():
        series = SpatialSeries(name=name, data=H5DataIO(traces[name], compression="gzip"), reference_frame="screen",
                               timestamps=first if first is not None else timestamps, unit="meters",
                               conversion=1e-3, comments="columns=[x,y]", description=description)
        first = first or series
        module.add(series)
    module.add(TimeSeries(name="hand_vel", data=H5DataIO(traces["hand_vel"], compression="gzip"), timestamps=first,
                          unit="m/s", conversion=1e-3, comments="columns=[x,y]",
                          description="Monkey hand velocity in mm/s, calculated from monkey hand position"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return MazeTruth(start=start, stop=stop, move_onset=move_onset, split=split, direction=direction,
                     unit_ids=unit_ids, heldout=heldout, preferred=preferred, spike_times=spikes, early_onset=early)
