"""The report's trial-level figures: PSTHs over all trials (with the held-out real PSTH as the noise reference)
and trial-length histograms (variable-length sessions). Plain arrays in, one Figure out, like figures.py."""

from __future__ import annotations

import numpy as np

from nwb_ldns.metrics.conditions import PSTH_SMOOTHING_S, smoothed_psth
from nwb_ldns.report.figures import REAL_COLOR, _grid, colors, plt

N_PSTH_UNITS = 6


def _psth(counts, bin_width: float, mask=None) -> np.ndarray:
    """float64[time, unit]: smoothed trial-averaged rate (Hz) over all trials (NaN where no trial reaches)."""
    labels = np.full(len(counts), "all", dtype=object)
    return smoothed_psth(counts, bin_width, labels, mask).get("all")


def modulated_units(psth: np.ndarray, n: int = N_PSTH_UNITS) -> np.ndarray:
    """The n units whose real PSTH varies most over time (std over bins), most modulated first."""
    spread = np.nanstd(psth, axis=0)
    spread[~np.isfinite(spread)] = -1.0
    return np.argsort(-spread, kind="stable")[:n]


def psths(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None, heldout=None,
          heldout_mask=None, n_units: int = N_PSTH_UNITS, unit_ids=None):
    """Trial-averaged rate (Hz, 30 ms Gaussian) over all trials of the n_units most modulated units: the real
    training trials (grey), held-out real trials (black dashed: what a perfect model's PSTH differs by) and
    each generated set."""
    masks = masks or {}
    real_psth = _psth(real, bin_width, real_mask)
    units = modulated_units(real_psth, n_units)
    curves = [("real (train)", real_psth, REAL_COLOR, "-", 2.2)]
    if heldout is not None and len(heldout):
        curves.append(("real (held-out)", _psth(heldout, bin_width, heldout_mask), "k", "--", 1.0))
    curves += [(name, _psth(counts, bin_width, masks.get(name)), color, "-", 1.2)
               for (name, counts), color in zip(sets.items(), colors(len(sets)))]
    fig, axes = _grid(len(units), width=3.6, height=2.8, max_cols=3)
    for ax, unit in zip(axes, units):
        for label, psth, color, style, width in curves:
            t = (np.arange(psth.shape[0]) + 0.5) * bin_width
            ax.plot(t, psth[:, unit], style, color=color, lw=width, label=label)
        name = f"unit {unit_ids[unit]}" if unit_ids is not None else f"unit #{unit}"
        ax.set(title=name, xlabel="time in trial (s)", ylabel="rate (Hz)")
        ax.set_ylim(bottom=0)
    axes[0].legend()
    fig.tight_layout()
    return fig


def trial_lengths(real_mask, masks: dict, bin_width: float):
    """Histogram of trial lengths (s) of the real training trials and of each generated set."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    real_len = np.asarray(real_mask).sum(axis=1) * bin_width
    lengths = {name: np.asarray(mask).sum(axis=1) * bin_width for name, mask in masks.items() if mask is not None}
    every = np.concatenate([real_len, *lengths.values()])
    edges = np.histogram_bin_edges(every, bins=min(30, max(5, len(np.unique(every)))))
    if edges[0] == edges[-1]:
        edges = np.array([edges[0] - bin_width, edges[0] + bin_width])
    ax.hist(real_len, bins=edges, density=True, color=REAL_COLOR, alpha=0.45,
            label=f"real (train, n={len(real_len)})")
    for (name, values), color in zip(lengths.items(), colors(len(lengths))):
        ax.hist(values, bins=edges, density=True, histtype="step", lw=1.6, color=color,
                label=f"{name} (n={len(values)})")
    ax.set(xlabel="trial length (s)", ylabel="density", title="trial lengths")
    ax.legend()
    fig.tight_layout()
    return fig


PSTH_CAPTION = (f"Trial-averaged rate (Hz, {PSTH_SMOOTHING_S * 1e3:g} ms Gaussian smoothing) over all trials, "
                f"for the {N_PSTH_UNITS} units (by id) whose real PSTH varies most over time. "
                "Grey: real training trials; black dashed: held-out real trials (how far a PSTH of other real "
                "trials lies: the noise reference); colours: generated sets.")
