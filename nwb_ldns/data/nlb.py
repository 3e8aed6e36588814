"""The MC_Maze recipe: how the LDNS paper reads the NLB monkey reach file (DANDI:000128), as plain facts.

Why a recipe: the published file has everything LDNS needs, but the paper's tensors come from a specific reading of
it (ldns-reference.md 1c, data-formats.md 2.4): 5 ms bins, windows -250..+450 ms around `move_onset_time`, held-in
and held-out units together, hand velocity lagged by 100 ms, the reach angle from the velocity 100 ms after onset,
and a 2008 / 71 / 216 split derived from the NLB `split` column. A user should get exactly that from
`fit FILE --preset monkey`, without knowing the details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from nwb_ldns.errors import SessionContentError


@dataclass(frozen=True)
class MCMazeRecipe:
    """Reader options of the LDNS monkey data (all times in seconds)."""

    bin_width: float = 0.005
    align: str = "move_onset_time"
    window: tuple[float, float] = (-0.25, 0.45)  # 140 bins of 5 ms
    behavior: str = "processing/behavior/hand_vel"
    behavior_lag: float = 0.1  # nlb_tools PARAMS['mc_maze']['lag'] = 100 ms: behaviour window -150..+550 ms
    behavior_scale: float = 1e-3  # LatentMonkeyDataset divides hand velocity by 1e3: mm/s -> m/s
    angle_bin: int = 50  # LatentMonkeyDataset: atan2(v_y[50], v_x[50]), 100 ms after onset in the lagged window
    split_seed: int = 42  # torch.Generator().manual_seed(42) in LDNS' random_split of the held-back val half

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments of `load_session` that reproduce the paper's reading."""
        return {"bin_width": self.bin_width, "align": self.align, "window": self.window, "behavior": self.behavior}


MC_MAZE = MCMazeRecipe()
REQUIRED_UNIT_COLUMNS = ("spike_times", "obs_intervals", "heldout")
REQUIRED_TRIAL_COLUMNS = ("move_onset_time", "split")


def finish_mc_maze(ds: xr.Dataset) -> xr.Dataset:
    """The recipe's last steps on the read session: held-in then held-out units, the reach angle per trial."""
    if "unit_heldout" in ds:
        ds = ds.isel(unit=heldin_then_heldout(ds["unit"].values, ds["unit_heldout"].values.astype(bool)))
    if "behavior" in ds:
        angle = reach_angle(ds["behavior"].values, MC_MAZE.angle_bin)
        ds = ds.assign(trial_reach_angle=("trial", angle))
        ds["trial_reach_angle"].attrs.update(units="rad", long_name="reach angle: direction of the hand velocity "
                                             f"at bin {MC_MAZE.angle_bin} of the lagged window")
    ds.attrs["recipe"] = "mc_maze"
    return ds


def looks_like_mc_maze(nwbfile) -> bool:
    """True for a file in the NLB MC_Maze layout: Units with obs_intervals and heldout, trials with move onset and
    the NLB split, and hand velocity in processing/behavior."""
    units, trials = nwbfile.units, nwbfile.trials
    if units is None or trials is None:
        return False
    behaviour = nwbfile.processing.get("behavior")
    return (all(name in units.colnames for name in REQUIRED_UNIT_COLUMNS)
            and all(name in trials.colnames for name in REQUIRED_TRIAL_COLUMNS)
            and behaviour is not None and "hand_vel" in behaviour.data_interfaces)


def ldns_monkey_split(nlb_split: np.ndarray, seed: int = MC_MAZE.split_seed) -> np.ndarray:
    """LDNS' train / val / test labels from the NLB split column, in the table's trial order.

    train = NLB 'train' + the first half of NLB 'val'; the second half of 'val' is permuted with torch's generator
    seeded with `seed` (what `random_split([n // 4, rest])` does) and cut into val (n // 4) and test (the rest).
    Other NLB labels ('test', 'none') become 'none' (not used). On the real file: 2008 / 71 / 216.
    """
    import torch

    labels = np.asarray(nlb_split).astype(str)
    out = np.full(labels.shape, "none", dtype=object)
    out[labels == "train"] = "train"
    val_rows = np.flatnonzero(labels == "val")
    if len(val_rows) < 2:
        raise SessionContentError(
            f"the trials' NLB split column has {len(val_rows)} 'val' trials; the LDNS monkey split needs at least 2 "
            "(is this the desc-train file of DANDI:000128?); or give --split-column / --split-seed instead")
    half = len(val_rows) // 2
    out[val_rows[:half]] = "train"
    held_back = val_rows[half:]
    order = torch.randperm(len(held_back), generator=torch.Generator().manual_seed(seed)).numpy()
    n_val = len(held_back) // 4
    out[held_back[order[:n_val]]] = "val"
    out[held_back[order[n_val:]]] = "test"
    return out.astype(str)


def reach_angle(behavior: np.ndarray, angle_bin: int = MC_MAZE.angle_bin) -> np.ndarray:
    """Reach angle (radians) of each trial: the direction of the (lagged) hand velocity at bin `angle_bin`.

    behavior: (trial, time, 2) velocity (x, y). A trial whose velocity there is NaN or exactly zero gets NaN.
    """
    behavior = np.asarray(behavior, dtype=np.float64)
    if behavior.ndim != 3 or behavior.shape[2] < 2:
        raise SessionContentError(f"the reach angle needs (trial, time, x/y) velocity; got shape {behavior.shape}")
    if not 0 <= angle_bin < behavior.shape[1]:
        raise SessionContentError(
            f"the reach angle is read at bin {angle_bin}, but trials have {behavior.shape[1]} bins; use the "
            "monkey window (-0.25 0.45 s around move onset at 5 ms bins)")
    vx, vy = behavior[:, angle_bin, 0], behavior[:, angle_bin, 1]
    angle = np.arctan2(vy, vx)
    angle[~np.isfinite(vx) | ~np.isfinite(vy) | ((vx == 0) & (vy == 0))] = np.nan
    return angle


def heldin_then_heldout(unit_ids: np.ndarray, heldout: np.ndarray) -> np.ndarray:
    """Unit order of the LDNS tensors: held-in units then held-out units, each by ascending id (182 on the real
    file: 137 + 45). Returns the permutation of the given units."""
    unit_ids, heldout = np.asarray(unit_ids), np.asarray(heldout, dtype=bool)
    return np.lexsort((unit_ids, heldout))
