"""Latents for the report's latent figures, read beside the spikes: ground truth, generated, autoencoder.

Why a separate reader: `load_session` keeps spikes and trial variables only, while the latent figures need
- the ground-truth latents a simulated session carries (`convert lorenz` writes processing/misc/latents: the
  bins of all trials concatenated, trial-major, in trials-table order),
- the latents a generated file carries (the synthetic writer's processing/ecephys/generated_latents: the valid
  bins of its trials concatenated, in trial order), and
- the autoencoder latents of the real trials, which only the model can give (`evaluate --model DIR`).
Each reader returns float32[trial, time, latent] for the trials of the given Dataset (first `max_trials`), or
None when the file has no such series or it does not line up with the Dataset's trials.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import xarray as xr

from nwb_ldns.errors import SessionContentError

GROUND_TRUTH_SERIES = ("misc", "latents")
GENERATED_SERIES = ("ecephys", "generated_latents")


def _series(nwbfile, module: str, name: str):
    processing = nwbfile.processing
    if module not in processing or name not in processing[module].data_interfaces:
        return None
    return processing[module].data_interfaces[name].data


def ground_truth_latents(path: str | os.PathLike, ds: xr.Dataset, max_trials: int = 1000) -> np.ndarray | None:
    """The simulated latents of ds's trials (matched by trial id), or None (no series, or another binning)."""
    from nwb_ldns.data.opening import open_nwb

    with open_nwb(path) as opened:
        nwbfile = opened.nwbfile
        data = _series(nwbfile, *GROUND_TRUTH_SERIES)
        if data is None or nwbfile.trials is None:
            return None
        ids = np.asarray(nwbfile.trials.id[:])
        n_bins = int(ds.sizes["time"])
        if len(ids) == 0 or data.shape[0] != len(ids) * n_bins or len(data.shape) != 2:
            return None  # read with another bin width or window than the simulation's
        row_of = {int(i): r for r, i in enumerate(ids)}
        wanted = [row_of.get(int(t)) for t in ds["trial"].values[:max_trials]]
        if any(r is None for r in wanted):
            return None
        out = np.empty((len(wanted), n_bins, data.shape[1]), np.float32)
        for k, row in enumerate(wanted):
            out[k] = data[row * n_bins:(row + 1) * n_bins]
        return out


def generated_latents(path: str | os.PathLike, ds: xr.Dataset, max_trials: int = 1000) -> np.ndarray | None:
    """The latents a generated file carries, laid out like ds's counts (first max_trials trials), or None."""
    from nwb_ldns.data.opening import open_nwb

    mask = ds["mask"].values[:max_trials].astype(bool)
    with open_nwb(path) as opened:
        data = _series(opened.nwbfile, *GENERATED_SERIES)
        if data is None or len(data.shape) != 2:
            return None
        total = int(ds["mask"].values.sum())
        if data.shape[0] != total:
            return None
        rows = np.asarray(data[:int(mask.sum())], dtype=np.float32)
    out = np.zeros(mask.shape + (rows.shape[1],), np.float32)
    out[mask] = rows
    return out


def autoencoder_latents(model_dir: str | os.PathLike, ds: xr.Dataset, max_trials: int = 1000,
                        batch_size: int = 64) -> np.ndarray:
    """The model's autoencoder latents of ds's first max_trials trials (invalid bins zeroed)."""
    import torch

    from nwb_ldns.model_dir import LDNSModel
    from nwb_ldns.training.latents import encode

    model = LDNSModel.load(model_dir, device="cpu")
    n_units = int(model.data["n_units"])
    if ds.sizes["unit"] != n_units:
        raise SessionContentError(f"the model in {model_dir} has {n_units} units but the real session has "
                                  f"{ds.sizes['unit']}; give --model the directory these samples came from")
    counts = torch.from_numpy(np.ascontiguousarray(ds["counts"].values[:max_trials], dtype=np.float32))
    z = encode(model.autoencoder, counts, batch_size, torch.device("cpu")).numpy()
    return z * ds["mask"].values[:max_trials, :, None]


def collect_latents(real_path: str | os.PathLike, real: xr.Dataset, generated_paths: Sequence[str | os.PathLike],
                    generated: Sequence[xr.Dataset], names: Sequence[str], *, model_dir=None,
                    train_split: str = "train", max_trials: int = 1000) -> dict:
    """What write_report's `latents=` takes: {"ground_truth": [trial, time, 3] of the real training trials or
    None, "autoencoder": AE latents of the real training trials or None, "generated": {name: latents}}."""
    train = real.isel(trial=np.flatnonzero(real["split"].values == train_split))
    truth = ground_truth_latents(real_path, train, max_trials) if train.sizes["trial"] else None
    heldout = real.isel(trial=np.flatnonzero(~np.isin(real["split"].values, [train_split, "generated"])))
    truth_heldout = (ground_truth_latents(real_path, heldout, max_trials)
                     if truth is not None and heldout.sizes["trial"] else None)
    sets = {}
    for name, path, ds in zip(names, generated_paths, generated):
        z = generated_latents(path, ds, max_trials)
        if z is not None:
            sets[name] = z
    auto = autoencoder_latents(model_dir, train, max_trials) if model_dir is not None and sets else None
    return {"ground_truth": truth, "ground_truth_heldout": truth_heldout, "autoencoder": auto, "generated": sets}
