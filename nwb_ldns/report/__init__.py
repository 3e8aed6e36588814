"""A self-contained HTML report of an evaluation: metric table with noise floor, figures as PNG files beside it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from nwb_ldns.fileio import atomic_output
from nwb_ldns.metrics.evaluate import fit_behaviour_decoder, json_ready, training_trials
from nwb_ldns.metrics.memorisation import memorisation_check

__all__ = ["write_report"]


def _arrays(ds: xr.Dataset, max_trials: int) -> tuple[np.ndarray, np.ndarray | None]:
    ds = ds.isel(trial=slice(0, max_trials))
    return ds["counts"].values, (ds["mask"].values if "mask" in ds else None)


ISI_CAPTION = (
    "Histogram of every inter-spike interval, pooled over units and trials (fraction of all ISIs, log scale; the "
    "first 20 bins of {ms:g} ms, one histogram bin each); the legend gives the share of ISIs below one bin (the "
    "first histogram bin, left of the dotted line). "
    "Spike times come from binned counts: the k spikes of one bin are spaced evenly inside it (the export rule, "
    "t0 + dt*j/(k+1)), so every ISI below one bin comes from that placement rule and means two or more spikes "
    "in one bin. A refractory period in the real data shows as empty bins below it; Poisson sampling without "
    "spike history fills them.")
PSTH_CAPTION = (
    "Trial-averaged rate (Hz, 30 ms Gaussian smoothing) of the real training trials of each condition (grey; trial "
    "count in the legend) and of the generated trials requested for it, for the {n} units whose real PSTH differs "
    "most between conditions; at most 8 conditions (those with most real trials). Reach angles are binned into 8 "
    "sectors of 45 degrees. Pearson r per condition: results.json, condition_psth.")
BAND = ("Grey band: the noise floor, 95 % of the differences between two random halves of the real training "
        "trials (points inside it differ from the real data by no more than sampling noise).")
DECODING_CAPTION = (
    "The behaviour decoder of the table (ridge from 30 ms-smoothed real training spikes) applied to the generated "
    "trials. Trace-conditioned sets: requested (solid) vs decoded (dashed) velocity of 6 trials, each integrated "
    "over the trial (cumulative sum x bin width) to a path. Angle-conditioned sets: reach angle of the decoded "
    "velocity (bins 45-55) vs the requested angle. The held-out real trials (true vs decoded) show what the "
    "decoder reads from real spikes.")


def _latent_notes(latents: dict | None) -> list[str]:
    """Why a latent figure is absent when it could have been drawn."""
    if latents and latents.get("generated") and latents.get("autoencoder") is None:
        return ["the generated files carry latents: give evaluate --model MODEL_DIR (the model they were sampled "
                "from) to compare them with the autoencoder latents of the real trials"]
    return []


def _condition_plan(cfigs, train: xr.Dataset, heldout: xr.Dataset, sets: dict[str, xr.Dataset]) -> list:
    """The per-condition PSTH figure (one per condition variable) and the decoding figure, where they apply."""
    plan = []
    for variable, members in cfigs.condition_variables(train, sets).items():
        short = variable.removeprefix("trial_")
        filename = f"psth_{re.sub(r'[^A-Za-z0-9_-]', '_', short)}"
        filename += f"_{len(plan)}.png" if any(p[0] == f"{filename}.png" for p in plan) else ".png"
        plan.append((filename, f"Per-condition PSTHs ({short})", PSTH_CAPTION.format(n=3),
                     lambda v=variable, m=members: cfigs.condition_psths(train, {k: sets[k] for k in m}, v)))
    fitted = fit_behaviour_decoder(train)  # fitted once, for the check and the figure
    panels = cfigs.decoding_panels(fitted[0] if fitted else None, heldout, sets)
    if panels:
        plan.append(("decoded_trajectories.png", "Decoded behaviour of conditioned samples", DECODING_CAPTION,
                     lambda: cfigs.decoded_trajectories(fitted, train, heldout, sets, panels)))
    return plan


RASTER_CAPTION = (
    "The first {n} trials (rows) of the real training data and of each generated set (columns). A tick marks a bin "
    "with spikes (darker: more); units are sorted by their mean rate in the real data, highest at the top, in the "
    "same order in every column. Grey: bins past the end of a shorter trial.")
LENGTHS_CAPTION = "Trial lengths (valid bins x bin width) of the real training trials and of each generated set."
AE_CAPTION = (
    "The model's autoencoder latents of the real training trials (grey; evaluate --model) against the latents its "
    "diffusion model generated (stored in each generated file). Top: distribution of each latent channel over all "
    "valid bins; bottom: its mean over trials (line) ± std (band) against time. A diffusion model that fits puts "
    "its latents on top of the autoencoder's.")
TRUTH_CAPTION = (
    "Simulated sessions only: the ground-truth latents the file carries (processing/misc/latents; Lorenz x and z) "
    "of {n} real {which} trials, and the latents read out of spikes by a ridge decoder (30 ms-smoothed counts, "
    "fitted on the real training trials against their ground truth) for the same real trials (R² vs the truth) and "
    "for {n} trials of each generated set. Generated trials whose read-out latents trace the same attractor as the "
    "real ones follow the same dynamics.")


def _latent_plan(latents: dict | None, bin_width: float, real_counts, real_mask, held_counts, held_mask,
                 sets: dict, masks: dict, max_trials: int) -> list:
    """The ground-truth and autoencoder-vs-diffusion figures, where `latents` (report.latents.collect_latents)
    has what they need."""
    from nwb_ldns.report import latent_figures as lfigs

    plan: list = []
    if not latents:
        return plan
    truth = latents.get("ground_truth")
    if truth is not None and len(truth) >= 2:
        truth_held = latents.get("ground_truth_heldout")
        which = "held-out" if truth_held is not None and held_counts is not None else "training"
        n = lfigs.N_EXAMPLE_TRIALS
        plan.append(("ground_truth_latents.png", "Ground-truth latents", TRUTH_CAPTION.format(n=n, which=which),
                     lambda: lfigs.ground_truth(truth, real_counts[:len(truth)], bin_width, sets, truth_held,
                                                held_counts, _head(real_mask, len(truth)), held_mask, masks)))
    auto, gen = latents.get("autoencoder"), latents.get("generated") or {}
    if auto is not None and gen:
        plan.append(("latents.png", "Autoencoder vs diffusion latents", AE_CAPTION,
                     lambda: lfigs.autoencoder_vs_diffusion(auto, gen, bin_width, real_mask, masks)))
    return plan


def _head(mask, n: int):
    return None if mask is None else mask[:n]


def _variable_length(*masks) -> bool:
    return any(m is not None and not np.asarray(m).all() for m in masks)


def write_report(report_dir: str | os.PathLike, real: xr.Dataset, generated: list[xr.Dataset], result: dict, *,
                 overwrite: bool = False, max_trials: int = 1000, inputs: Sequence[str | os.PathLike] = (),
                 latents: dict | None = None) -> Path:
    """Write index.html, results.json and one PNG per figure into report_dir (atomically); return index.html.

    `result` is the dict of nwb_ldns.metrics.evaluate for the same real/generated data; figures use at most
    max_trials trials per set. inputs: files the calling command read (the report may not be one of them);
    overwrite replaces only an earlier report. latents: `nwb_ldns.report.latents.collect_latents(...)` (ground
    truth, autoencoder and generated latents) for the latent figures; without it they are left out.
    """
    import matplotlib.pyplot as plt

    from nwb_ldns.report import condition_figures as cfigs
    from nwb_ldns.report import figures as figs
    from nwb_ldns.report import trial_figures as tfigs
    from nwb_ldns.report.html import render

    train = training_trials(real, result["real"]["split"])
    heldout = real.isel(trial=np.flatnonzero(~np.isin(real["split"].values, [result["real"]["split"], "generated"])))
    bin_width = float(result["real"]["bin_width"])
    real_counts, real_mask = _arrays(train, max_trials)
    names = [entry["name"] for entry in result["generated"]]
    arrays = {name: _arrays(ds, max_trials) for name, ds in zip(names, generated)}
    sets = {name: counts for name, (counts, _) in arrays.items()}
    masks = {name: mask for name, (_, mask) in arrays.items()}
    held_counts, held_mask = _arrays(heldout, max_trials) if heldout.sizes["trial"] else (None, None)
    plan = [
        ("rasters.png", "Example trials", RASTER_CAPTION.format(n=figs.N_RASTER_TRIALS),
         lambda: figs.rasters(real_counts, sets, bin_width, masks, real_mask, n_trials=figs.N_RASTER_TRIALS)),
        ("psth.png", "PSTHs (all trials)", tfigs.PSTH_CAPTION,
         lambda: tfigs.psths(real_counts, sets, bin_width, masks, real_mask, held_counts, held_mask,
                             unit_ids=train["unit"].values)),
        ("population_counts.png", "Population spike counts",
         "Histogram of the summed count per bin (unit bins) and the KDE used for the KL statistic.",
         lambda: figs.population_counts(real_counts, sets, int(result["settings"]["maxval"]), masks, real_mask)),
        ("correlations.png", "Pairwise correlations",
         "Correlation matrices (real below the diagonal, generated above) and real vs generated pairwise "
         "correlations. " + BAND, lambda: figs.correlations(real_counts, sets, masks, real_mask)),
        ("isi.png", "ISI statistics", "Per-neuron mean and standard deviation of inter-spike intervals (s). " + BAND,
         lambda: figs.isi_scatter(real_counts, sets, bin_width, masks, real_mask)),
        ("isi_distribution.png", "ISI distribution", ISI_CAPTION.format(ms=bin_width * 1e3),
         lambda: figs.isi_distribution(real_counts, sets, bin_width, masks, real_mask)),
        ("rates.png", "Firing rates", "Per-neuron mean firing rate (Hz). " + BAND,
         lambda: figs.rate_scatter(real_counts, sets, bin_width, masks, real_mask)),
        ("pca_psd.png", "PCA trajectories and power spectra",
         "PCs of Gaussian-smoothed spikes (30 ms std), fitted on the real trials and applied to every set; PSD of "
         "PC1 and PC2 across trials (y axis: at most 4 decades below the highest median).",
         lambda: figs.pcs_and_psd(real_counts, sets, bin_width, masks, real_mask)),
        ("temporal.png", "Temporal correlations",
         "Units sorted by their summed squared correlation (real data) in 4 groups; cross-correlations averaged "
         "over pairs and auto-correlations (zero lag set to 0) averaged over units, de-meaned per trial, biased.",
         lambda: figs.temporal(real_counts, sets, bin_width, masks, real_mask)),
    ]
    if _variable_length(real_mask, *masks.values()):
        plan.append(("trial_lengths.png", "Trial lengths", LENGTHS_CAPTION,
                     lambda: tfigs.trial_lengths(real_mask, masks, bin_width)))
    plan += _latent_plan(latents, bin_width, real_counts, real_mask, held_counts, held_mask, sets, masks,
                         max_trials)
    plan += _condition_plan(cfigs, train.isel(trial=slice(0, max_trials)),
                            heldout.isel(trial=slice(0, max_trials)),
                            {name: ds.isel(trial=slice(0, max_trials)) for name, ds in zip(names, generated)})
    if any("memorisation" in entry for entry in result["generated"]):
        plan.append(("memorisation.png", "Memorisation check",
                     "Distance of each trial to its nearest real training trial: reference (held-out real trials, "
                     "or training trials leave-one-out) vs generated; dotted: the reference's 5th and 95th "
                     "percentiles. Many generated trials left of the 5th: copying; many right of the 95th: a poor "
                     "fit (generated trials unlike any training trial, farther than fresh real trials are).",
                     lambda: figs.memorisation({
                         name: memorisation_check(real_counts, sets[name], held_counts, train_mask=real_mask,
                                                  generated_mask=masks[name], heldout_mask=held_mask)
                         for name in names})))
    with atomic_output(report_dir, overwrite=overwrite, is_dir=True, kind="report", inputs=inputs) as tmp:
        written = []
        for filename, title, caption, make in plan:
            with plt.rc_context(figs.STYLE):
                fig = make()
                fig.savefig(tmp / filename, dpi=100)
            plt.close(fig)
            written.append((filename, title, caption))
        (tmp / "results.json").write_text(json.dumps(json_ready(result), indent=2, allow_nan=False))
        (tmp / "index.html").write_text(render(result, written, notes=_latent_notes(latents)), encoding="utf-8")
    return Path(report_dir) / "index.html"
