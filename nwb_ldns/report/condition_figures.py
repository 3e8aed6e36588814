"""The report's conditioning figures: per-condition PSTHs (real vs generated) and decoded trajectories / angles.

Inputs are session Datasets (already cut to the report's trial limit): the conditions are trial variables, the
requested behaviour is `behavior`, so arrays alone would not do. Each function returns a Figure, or the write_report
plan leaves it out when `*_sets` says there is nothing to draw.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from nwb_ldns.metrics.conditions import ANGLE_VARIABLE, PSTH_SMOOTHING_S, match_conditions, smoothed_psth  # noqa: E402
from nwb_ldns.metrics.decoding import RidgeDecoder, decoded_angles  # noqa: E402
from nwb_ldns.metrics.evaluate import decode_behaviour  # noqa: E402
from nwb_ldns.report.figures import REAL_COLOR, colors  # noqa: E402

MAX_CONDITIONS = 8  # columns of the PSTH grid (the conditions with most real trials)
N_TRAJECTORIES = 6


def _mask(ds: xr.Dataset) -> np.ndarray | None:
    return ds["mask"].values if "mask" in ds else None


# -- per-condition PSTHs ----------------------------------------------------------------------------------------------
def condition_variables(train: xr.Dataset, sets: dict[str, xr.Dataset]) -> dict[str, list[str]]:
    """{condition variable: names of the sets that share it with the real trials}, in the order first met."""
    out: dict[str, list[str]] = {}
    for name, ds in sets.items():
        conditions = match_conditions(train, ds)
        if conditions is not None:
            out.setdefault(conditions.variable, []).append(name)
    return out


def _top_units(psths: dict[str, np.ndarray], n_units: int) -> np.ndarray:
    """Units whose real PSTH differs most between conditions (variance across conditions, averaged over time)."""
    stacked = np.stack(list(psths.values()))
    spread = np.nanmean(np.nanvar(stacked, axis=0), axis=0) if len(psths) > 1 else np.nanmean(stacked[0], axis=0)
    return np.argsort(-np.nan_to_num(spread, nan=-1.0), kind="stable")[:n_units]


def condition_psths(train: xr.Dataset, sets: dict[str, xr.Dataset], variable: str, n_units: int = 3):
    """Grid of a few units (rows) x conditions (columns): smoothed PSTH of the real training trials of each
    condition vs the generated trials requested for it, for every set conditioned on `variable`."""
    bin_width = float(train.attrs["bin_width"])
    matched = {name: match_conditions(train, ds) for name, ds in sets.items()}
    matched = {name: c for name, c in matched.items() if c is not None and c.variable == variable}
    first = next(iter(matched.values()))
    real = smoothed_psth(train["counts"].values, bin_width, first.real, _mask(train))
    counts = {label: int(sum(1 for v in first.real.tolist() if v == label)) for label in real}
    shown = sorted((label for label in first.order if label in real), key=lambda k: -counts[k])[:MAX_CONDITIONS]
    shown = [label for label in first.order if label in shown]
    units = _top_units({k: real[k] for k in shown}, n_units)
    generated = {name: smoothed_psth(sets[name]["counts"].values, bin_width, c.generated, _mask(sets[name]))
                 for name, c in matched.items()}
    set_colors = dict(zip(sets, colors(len(sets))))
    fig, axes = plt.subplots(len(units), len(shown), figsize=(2.3 * len(shown) + 0.6, 1.9 * len(units) + 0.6),
                             squeeze=False, sharex=True)
    time_ms = np.asarray(train["time"].values, dtype=np.float64) * 1e3
    for row, unit in enumerate(units):
        for col, label in enumerate(shown):
            ax = axes[row, col]
            ax.plot(time_ms, real[label][:, unit], color=REAL_COLOR, lw=2, label=f"real ({counts[label]})")
            for name, psth in generated.items():
                if label in psth:
                    n = min(len(time_ms), len(psth[label]))
                    ax.plot(time_ms[:n], psth[label][:n, unit], color=set_colors[name], lw=1.2, label=name)
            if row == 0:
                ax.set_title(f"{label}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"unit {train['unit'].values[unit]} (Hz)", fontsize=8)
            if row == len(units) - 1:
                ax.set_xlabel("time (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"PSTH per condition ({variable}); {PSTH_SMOOTHING_S * 1e3:g} ms smoothing", fontsize=10)
    fig.tight_layout()
    return fig


# -- decoded trajectories and angles ----------------------------------------------------------------------------------
def _has_trace(ds: xr.Dataset, decoder: RidgeDecoder) -> bool:
    return "behavior" in ds and ds["behavior"].shape[2] == decoder.coef.shape[1] and ds.sizes["trial"] > 0


def _has_angle(ds: xr.Dataset, decoder: RidgeDecoder) -> bool:
    from nwb_ldns.data.nlb import MC_MAZE

    return (ANGLE_VARIABLE in ds and decoder.coef.shape[1] == 2 and ds.sizes["time"] > MC_MAZE.angle_bin
            and ds.sizes["trial"] > 0)


def decoding_panels(decoder: RidgeDecoder | None, heldout: xr.Dataset, sets: dict[str, xr.Dataset]
                    ) -> list[tuple[str, str]]:
    """[(set name, "trace" | "angle")] the decoding figure draws (the held-out real trials first, as reference);
    empty when there is no decoder (no behaviour) or no generated set was conditioned on a trace or an angle."""
    if decoder is None:
        return []
    panels = [(name, kind) for name, ds in sets.items() for kind, ok in
              (("trace", _has_trace(ds, decoder)), ("angle", _has_angle(ds, decoder))) if ok]
    if not panels:
        return []
    kinds = {kind for _, kind in panels}
    reference = [("held-out real", kind) for kind in ("trace", "angle") if kind in kinds and heldout.sizes["trial"]
                 and (_has_trace if kind == "trace" else _has_angle)(heldout, decoder)]
    return reference + panels


def decoded_trajectories(fitted: tuple[RidgeDecoder, float], train: xr.Dataset, heldout: xr.Dataset,
                         sets: dict[str, xr.Dataset], panels: list[tuple[str, str]]):
    """Per conditioned set: requested vs decoded velocity integrated to a path (trace models) or decoded vs
    requested reach angle (angle models); held-out real trials (true vs decoded) as the reference panels.

    fitted: evaluate's decoder (`fit_behaviour_decoder`); panels: `decoding_panels` of it."""
    from nwb_ldns.data.nlb import MC_MAZE

    decoder, std_bins = fitted
    everything = {"held-out real": heldout, **sets}
    set_colors = {"held-out real": REAL_COLOR, **dict(zip(sets, colors(len(sets))))}
    bin_width = float(train.attrs["bin_width"])
    cols = min(len(panels), 4)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (name, kind) in zip(axes.flat, panels):
        ds = everything[name].isel(trial=slice(0, 200))
        decoded = decode_behaviour(decoder, std_bins, ds)
        if kind == "trace":
            _trajectories(ax, ds, decoded, bin_width)
            ax.set_title(f"{name}: requested (solid) vs decoded (dashed)" if name != "held-out real"
                         else "held-out real: true (solid) vs decoded (dashed)", fontsize=8)
        else:
            requested = np.degrees(ds[ANGLE_VARIABLE].values)
            found = np.degrees(decoded_angles(decoded, MC_MAZE.angle_bin))
            ax.scatter(requested, found, s=8, alpha=0.7, color=set_colors[name])
            ax.plot([-180, 180], [-180, 180], "--", color="k", lw=0.8)
            ax.set(xlim=(-185, 185), ylim=(-185, 185), xlabel="requested reach angle (deg)" if name != "held-out real"
                   else "true reach angle (deg)", ylabel="decoded reach angle (deg)")
            ax.set_title(f"{name}: decoded vs {'true' if name == 'held-out real' else 'requested'} angle", fontsize=8)
    fig.tight_layout()
    return fig


def _trajectories(ax, ds: xr.Dataset, decoded: np.ndarray, bin_width: float) -> None:
    """A few trials' paths: cumulative sum of velocity x bin width over the valid bins (first two dims), or the
    trace over time when the behaviour has one dimension."""
    requested = np.asarray(ds["behavior"].values, dtype=np.float64)
    mask = _mask(ds)
    valid = np.ones(requested.shape[:2], bool) if mask is None else mask
    trial_colors = colors(N_TRAJECTORIES)
    for k in range(min(N_TRAJECTORIES, requested.shape[0])):
        keep = valid[k] & np.isfinite(requested[k]).all(axis=1)
        want, got = requested[k][keep], decoded[k][keep]
        if requested.shape[2] >= 2:
            want, got = np.cumsum(want[:, :2] * bin_width, axis=0), np.cumsum(got[:, :2] * bin_width, axis=0)
            ax.plot(want[:, 0], want[:, 1], color=trial_colors[k], lw=1.4)
            ax.plot(got[:, 0], got[:, 1], "--", color=trial_colors[k], lw=1.0)
        else:
            t = np.flatnonzero(keep) * bin_width * 1e3
            ax.plot(t, want[:, 0], color=trial_colors[k], lw=1.4)
            ax.plot(t, got[:, 0], "--", color=trial_colors[k], lw=1.0)
    dims = [str(d) for d in ds["behavior_dim"].values] if "behavior_dim" in ds.coords else ["x", "y"]
    if requested.shape[2] >= 2:
        ax.set(xlabel=f"integrated {dims[0]}", ylabel=f"integrated {dims[1]}")
        ax.set_aspect("equal", adjustable="datalim")
    else:
        ax.set(xlabel="time (ms)", ylabel=dims[0])
