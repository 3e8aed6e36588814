"""The report's figures (matplotlib, Agg backend): one function per figure, each returns a Figure.

Inputs are plain arrays: `real` is counts[trial, time, unit] of the real training trials, `sets` maps a name to
the counts of one generated set; masks are optional [trial, time]. Large sets are subsampled by the caller.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nwb_ldns.metrics.correlation import correlation_matrix, lower_triangle  # noqa: E402
from nwb_ldns.metrics.isi import isi_statistics  # noqa: E402
from nwb_ldns.metrics.population import kde_from_histogram, per_trial_histograms  # noqa: E402
from nwb_ldns.metrics.rates import firing_rates  # noqa: E402
from nwb_ldns.metrics.spectral import power_spectrum, smoothed_pcs  # noqa: E402

REAL_COLOR = "0.35"
FLOOR_COLOR = "0.85"  # the noise-floor band on scatter plots
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9,
         "legend.title_fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9}  # write_report draws with these
N_RASTER_TRIALS = 5
PSD_DECADES = 4  # the PSD axis shows at most this many decades below the highest median (the range of interest)


def colors(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _grid(n_panels: int, width: float = 3.2, height: float = 2.8, max_cols: int = 4):
    cols = min(n_panels, max_cols)
    rows = int(np.ceil(n_panels / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.axis("off")
    return fig, axes.flat


def rate_order(real, real_mask=None) -> np.ndarray:
    """Unit indices by decreasing mean rate over the real trials (the raster's row order, highest on top)."""
    return np.argsort(-firing_rates(real, 1.0, real_mask), kind="stable")


def rasters(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None,
            n_trials: int = N_RASTER_TRIALS):
    """The first n_trials trials of the real data and of each set (one column each): a tick per bin with spikes
    (darker for more), time in seconds, units sorted by their real mean rate (highest rate at the top)."""
    masks = masks or {}
    order = rate_order(real, real_mask)
    items = [("real (train)", real, real_mask)] + [(name, counts, masks.get(name)) for name, counts in sets.items()]
    rows = max(1, min(n_trials, max(len(c) for _, c, _ in items)))
    fig, axes = plt.subplots(rows, len(items), figsize=(3.0 * len(items), 1.35 * rows + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    n_units = len(order)
    for col, (name, counts, mask) in enumerate(items):
        for row in range(rows):
            ax = axes[row, col]
            if row >= len(counts):
                ax.axis("off")
                continue
            trial = np.asarray(counts[row])[:, order]
            valid = trial.shape[0] if mask is None else int(np.asarray(mask[row]).sum())
            t, u = np.nonzero(trial[:valid] > 0)
            shade = np.clip(trial[t, u] / 3.0, 0.55, 1.0)
            ax.scatter((t + 0.5) * bin_width, n_units - 1 - u, s=9, c=shade, cmap="Greys", vmin=0, vmax=1,
                       marker="|", linewidths=1.1)
            if valid < trial.shape[0]:
                ax.axvspan(valid * bin_width, trial.shape[0] * bin_width, color="0.92", lw=0)
            ax.set(xlim=(0, trial.shape[0] * bin_width), ylim=(-0.5, n_units - 0.5))
            ax.set_yticks([0, n_units - 1], [str(n_units), "1"])
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(f"trial {row + 1}\nunit (by rate)")
        axes[-1, col].set_xlabel("time in trial (s)")
    fig.tight_layout(h_pad=0.3)
    return fig


def population_counts(real, sets: dict, maxval: int, masks: dict | None = None, real_mask=None):
    """Population-count histograms (unit bins) with the KDE used for the KL, real vs each set."""
    masks = masks or {}
    fig, axes = _grid(len(sets))
    real_hist = per_trial_histograms(real, real_mask).sum(axis=0)
    grid = np.arange(maxval + 1)
    real_kde = kde_from_histogram(real_hist, maxval)
    edges = np.arange(-0.5, maxval + 1.5)
    for ax, (name, counts), color in zip(axes, sets.items(), colors(len(sets))):
        hist = per_trial_histograms(counts, masks.get(name)).sum(axis=0)
        ax.stairs(_padded(real_hist, maxval) / real_hist.sum(), edges, color=REAL_COLOR, fill=True, alpha=0.35,
                  label="real")
        ax.stairs(_padded(hist, maxval) / hist.sum(), edges, color=color, label=name)
        ax.plot(grid, real_kde, ".-", color="k", lw=1, ms=2, label="real KDE")
        ax.plot(grid, kde_from_histogram(hist, maxval), ".-", color=color, lw=1, ms=2, label=f"{name} KDE")
        ax.set(xlabel="population spike count per bin", ylabel="probability", title=name)
        ax.legend()
    fig.tight_layout()
    return fig


def _padded(hist, maxval: int) -> np.ndarray:
    out = np.zeros(maxval + 1)
    out[:min(len(hist), maxval + 1)] = hist[:maxval + 1]
    return out


def correlations(real, sets: dict, masks: dict | None = None, real_mask=None):
    """Correlation matrices (real lower triangle | set upper triangle) and the pairwise scatter per set."""
    masks = masks or {}
    c_real = correlation_matrix(real, real_mask)
    (ca, ma), (cb, mb) = real_halves(real, real_mask)
    rows, cols = np.tril_indices(len(c_real), k=-1)
    width = floor_width(correlation_matrix(ca, ma)[rows, cols], correlation_matrix(cb, mb)[rows, cols], False)
    fig, axes = _grid(2 * len(sets), max_cols=4)
    axes = list(axes)
    for k, ((name, counts), color) in enumerate(zip(sets.items(), colors(len(sets)))):
        c_set = correlation_matrix(counts, masks.get(name))
        combined = lower_triangle(c_real) + lower_triangle(c_set).T
        lim = np.nanmax(np.abs(combined)) or 1.0
        ax = axes[2 * k]
        im = ax.imshow(combined, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set(title=f"lower: real, upper: {name}", xlabel="unit", ylabel="unit")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax = axes[2 * k + 1]
        x, y = c_real[rows, cols], c_set[rows, cols]
        ax.scatter(x, y, s=3, alpha=0.5, color=color, label=name)
        _identity(ax, x, y)
        floor_band(ax, width, relative=False)
        ax.set(xlabel="real pairwise correlation", ylabel=f"{name} pairwise correlation",
               title="pairwise correlations")
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def _identity(ax, x, y):
    values = np.concatenate([np.asarray(x)[np.isfinite(x)], np.asarray(y)[np.isfinite(y)]])
    if values.size:
        lo, hi = values.min(), values.max()
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="k", lw=0.8)


BAND_QUANTILE = 95  # the band holds this share of the half-vs-half differences


def real_halves(real, real_mask=None, seed: int = 0) -> tuple[tuple, tuple]:
    """Two disjoint random halves of the real trials: ((counts, mask), (counts, mask)); the noise-floor bands
    compare one with the other (what sampling noise alone gives)."""
    real = np.asarray(real)
    order = np.random.default_rng(seed).permutation(len(real))
    a, b = np.sort(order[:len(real) // 2]), np.sort(order[len(real) // 2:])
    pick = lambda idx: (real[idx], None if real_mask is None else np.asarray(real_mask)[idx])  # noqa: E731
    return pick(a), pick(b)


def floor_width(a, b, relative: bool) -> float:
    """Half-width of the noise-floor band: the 95th percentile of |a - b| (absolute) or of |a - b| / mean(a, b)
    (relative) over the finite pairs; NaN when there is none."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    if relative:
        scale = 0.5 * (np.abs(a) + np.abs(b))
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(scale > 0, diff / scale, np.nan)
    diff = diff[np.isfinite(diff)]
    return float(np.percentile(diff, BAND_QUANTILE)) if diff.size else float("nan")


def floor_band(ax, width: float, relative: bool) -> None:
    """Shade identity +- width (or identity x (1 +- width)) over the current x range, keeping the axis limits."""
    if not np.isfinite(width):
        return
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    x = np.linspace(*xlim, 50)
    lo, hi = (x * (1 - width), x * (1 + width)) if relative else (x - width, x + width)
    label = (f"real half vs half ({BAND_QUANTILE}%: ±{width:.0%})" if relative
             else f"real half vs half ({BAND_QUANTILE}%: ±{width:.2g})")
    ax.fill_between(x, lo, hi, color=FLOOR_COLOR, lw=0, zorder=0, label=label)
    ax.set(xlim=xlim, ylim=ylim)


def isi_scatter(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None):
    """Per-neuron mean and std of ISIs, real vs each set."""
    masks = masks or {}
    real_mean, real_std = isi_statistics(real, bin_width, real_mask)
    (ca, ma), (cb, mb) = real_halves(real, real_mask)
    (mean_a, std_a), (mean_b, std_b) = isi_statistics(ca, bin_width, ma), isi_statistics(cb, bin_width, mb)
    widths = (floor_width(mean_a, mean_b, True), floor_width(std_a, std_b, True))
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
    for (name, counts), color in zip(sets.items(), colors(len(sets))):
        mean, std = isi_statistics(counts, bin_width, masks.get(name))
        axes[0].scatter(real_mean, mean, s=8, alpha=0.7, color=color, label=name)
        axes[1].scatter(real_std, std, s=8, alpha=0.7, color=color, label=name)
    for ax, ref, what, width in [(axes[0], real_mean, "mean ISI (s)", widths[0]),
                                 (axes[1], real_std, "std ISI (s)", widths[1])]:
        _identity(ax, ref, ref)
        floor_band(ax, width, relative=True)
        ax.set(xlabel=f"real {what}", ylabel=f"generated {what}")
        ax.legend()
    fig.tight_layout()
    return fig


def rate_scatter(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None):
    """Per-neuron mean firing rate (Hz), real vs each set."""
    masks = masks or {}
    ref = firing_rates(real, bin_width, real_mask)
    (ca, ma), (cb, mb) = real_halves(real, real_mask)
    width = floor_width(firing_rates(ca, bin_width, ma), firing_rates(cb, bin_width, mb), True)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    for (name, counts), color in zip(sets.items(), colors(len(sets))):
        ax.scatter(ref, firing_rates(counts, bin_width, masks.get(name)), s=8, alpha=0.7, color=color, label=name)
    _identity(ax, ref, ref)
    floor_band(ax, width, relative=True)
    ax.set(xlabel="real rate (Hz)", ylabel="generated rate (Hz)", title="firing rates")
    ax.legend()
    fig.tight_layout()
    return fig


def pcs_and_psd(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None,
                std_s: float = 0.03, n_components: int = 3):
    """PCA of smoothed spikes (fitted on real): mean trajectories in PC1/PC2 and the PSD of PC1 and PC2."""
    masks = masks or {}
    names = list(sets)
    real_pcs, set_pcs, pca = smoothed_pcs(real, [sets[n] for n in names], bin_width, std_s=std_s,
                                          n_components=n_components, real_mask=real_mask,
                                          masks=[masks.get(n) for n in names])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    ax = axes[0]
    for pcs, name, color in [(real_pcs, "real", REAL_COLOR)] + list(zip(set_pcs, names, colors(len(names)))):
        for trial in pcs[:5]:
            ax.plot(trial[:, 0], trial[:, 1], color=color, lw=0.4, alpha=0.4)
        ax.plot(pcs[:, :, 0].mean(0), pcs[:, :, 1].mean(0), color=color, lw=2, label=f"{name} (mean)")
    ax.set(xlabel="PC1", ylabel="PC2", title=f"smoothed spikes ({std_s * 1e3:g} ms), 5 trials + mean")
    ax.legend()
    fs = 1.0 / bin_width
    for pc, ax in zip(range(min(2, real_pcs.shape[2])), axes[1:]):
        medians, uppers = [], []
        for pcs, name, color in [(real_pcs, "real", REAL_COLOR)] + list(zip(set_pcs, names, colors(len(names)))):
            spec = power_spectrum(pcs[:, :, pc:pc + 1], fs)
            ax.plot(spec["freqs"], spec["median"][:, 0], color=color, label=name)
            ax.fill_between(spec["freqs"], spec["q25"][:, 0], spec["q75"][:, 0], color=color, alpha=0.2)
            medians.append(spec["median"][:, 0])
            uppers.append(spec["q75"][:, 0])
        ax.set(xlabel="frequency (Hz)", ylabel="PSD (PC units² / Hz)", yscale="log",
               title=f"PSD of PC{pc + 1} (median, 25-75 %)")
        limits = psd_limits(medians, np.concatenate(uppers))
        if limits is not None:
            ax.set_ylim(*limits)
        ax.legend()
    fig.tight_layout()
    return fig


def psd_limits(medians: list, upper=None) -> tuple[float, float] | None:
    """y range of a PSD panel: from the lowest positive median (but at most PSD_DECADES decades below the highest
    median) to twice the highest median or upper quartile; None when nothing is positive."""
    values = np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in medians])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return None
    top = values.max()
    if upper is not None:
        upper = np.asarray(upper, dtype=np.float64)
        upper = upper[np.isfinite(upper) & (upper > 0)]
        top = max(top, upper.max() if upper.size else top)
    low = max(values.min() / 2.0, values.max() * 10.0 ** -PSD_DECADES)
    return float(low), float(2.0 * top)


def memorisation(checks: dict):
    """Nearest-training-trial distances: the reference (held-out real trials) vs each generated set, with the
    reference's 5th and 95th percentiles; the title names the finding both ways (copying / poor fit / neither)."""
    from nwb_ldns.metrics.memorisation import memorisation_verdict

    fig, axes = _grid(len(checks), width=4.2, height=3.2, max_cols=3)
    for ax, (name, check), color in zip(axes, checks.items(), colors(len(checks))):
        both = np.concatenate([check["heldout"], check["generated"]])
        bins = np.linspace(both.min(), both.max() + 1e-9, 30)
        label = "held-out real" if check["reference"] == "heldout" else "train (leave-one-out)"
        ax.hist(check["heldout"], bins=bins, density=True, color=REAL_COLOR, alpha=0.5, label=label)
        ax.hist(check["generated"], bins=bins, density=True, histtype="step", color=color, lw=1.5, label=name)
        for q in np.percentile(check["heldout"], [5, 95]):
            ax.axvline(q, ls=":", color="k", lw=1)
        kind, _ = memorisation_verdict(check, len(check["generated"]))
        closer, farther = check["frac_closer_than_heldout_p5"], check.get("frac_farther_than_heldout_p95", np.nan)
        ax.set(xlabel="distance to nearest training trial", ylabel="density",
               title=f"{name}: {'no copying, no poor fit' if kind == 'ok' else kind}\n"
                     f"{closer:.0%} below 5th pct, {farther:.0%} above 95th (dotted)")
        ax.legend()
    fig.tight_layout()
    return fig


def temporal(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None, n_lags: int = 30):
    """Temporal cross- and auto-correlations (count^2) per neuron group (groups sorted by real correlations)."""
    from nwb_ldns.metrics.temporal import neuron_groups, temporal_correlations

    masks = masks or {}
    groups = neuron_groups(real, 4, real_mask)
    n_lags = int(min(n_lags, np.asarray(real).shape[1] - 1))
    curves = [("real", REAL_COLOR, temporal_correlations(real, groups, n_lags, real_mask))]
    curves += [(name, color, temporal_correlations(counts, groups, n_lags, masks.get(name)))
               for (name, counts), color in zip(sets.items(), colors(len(sets)))]
    fig, axes = plt.subplots(2, len(groups), figsize=(3.0 * len(groups), 5.2), squeeze=False)
    for g in range(len(groups)):
        for row, kind in enumerate(("cross", "auto")):
            ax = axes[row, g]
            for name, color, result in curves:
                ax.plot(result["lags"] * bin_width * 1e3, result[kind][g], color=color, lw=1.2, label=name)
            ax.set(title=f"group {g + 1} ({len(groups[g])} units): {kind}", xlabel="lag (ms)")
            if g == 0:
                ax.set_ylabel("covariance (count²)")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


ISI_RANGE_BINS = 20  # the ISI histogram: 20 bins of one data bin each


def pooled_isis(counts, bin_width: float, mask=None) -> np.ndarray:
    """Every inter-spike interval (s) within a (trial, unit), pooled; spikes of one bin spaced evenly inside it."""
    from nwb_ldns.metrics._arrays import as_counts
    from nwb_ldns.metrics.isi import spike_times

    counts, _ = as_counts(counts, mask)
    times, group = spike_times(counts, bin_width)
    same = group[1:] == group[:-1]
    return np.diff(times)[same]


def isi_histogram(isis: np.ndarray, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges in ms, fraction of all ISIs per histogram bin): one data bin per histogram bin, the first one holding
    every ISI below one bin; the edges sit a hair below multiples of the bin so that exact multiples (spikes alone
    in their bins, k bins apart) fall in bin k whatever the rounding."""
    edges = np.concatenate([[0.0], (np.arange(1, ISI_RANGE_BINS + 1) - 1e-3) * bin_width])
    hist, _ = np.histogram(isis, bins=edges)
    return edges * 1e3, hist / max(isis.size, 1)


def isi_distribution(real, sets: dict, bin_width: float, masks: dict | None = None, real_mask=None):
    """Pooled ISI histogram (log fraction, ms) of the real trials vs each set; the share of ISIs below one bin."""
    masks = masks or {}
    real_isis = pooled_isis(real, bin_width, real_mask)
    edges, real_hist = isi_histogram(real_isis, bin_width)
    fig, axes = _grid(len(sets), width=3.8)
    for ax, (name, counts), color in zip(axes, sets.items(), colors(len(sets))):
        isis = pooled_isis(counts, bin_width, masks.get(name))
        _, hist = isi_histogram(isis, bin_width)
        for values, label, style in ((real_hist, f"real: {_below(real_isis, bin_width)}", REAL_COLOR),
                                     (hist, f"{name}: {_below(isis, bin_width)}", color)):
            shown = np.where(values > 0, values, np.nan)  # empty bins are gaps on the log axis
            ax.stairs(shown, edges, color=style, lw=2 if style == REAL_COLOR else 1.2, label=label)
        ax.axvline(bin_width * 1e3, ls=":", color="k", lw=0.8)
        ax.set(yscale="log", xlim=(0, edges[-1]), xlabel="inter-spike interval (ms)", ylabel="fraction of ISIs",
               title=name)
        ax.legend(title="ISIs below one bin")
    fig.tight_layout()
    return fig


def _below(isis: np.ndarray, bin_width: float) -> str:
    if isis.size == 0:
        return "no ISIs"
    return f"{np.mean(isis < bin_width * (1 - 1e-9)):.2%}"
