"""The report's latent figures: the model's autoencoder latents of real trials vs the latents its diffusion model
generated, and -- for simulated sessions that carry them (convert lorenz) -- the ground-truth latents against
latents read out of real and generated spikes by a linear decoder. Arrays in ([trial, time, latent]), a Figure out.
"""

from __future__ import annotations

import numpy as np

from nwb_ldns.metrics.decoding import RidgeDecoder, r2_score
from nwb_ldns.metrics.evaluate import DECODER_SMOOTHING_S
from nwb_ldns.metrics.smoothing import smooth_counts
from nwb_ldns.report.figures import REAL_COLOR, colors, plt

MAX_DIMS = 4  # latent channels shown
N_EXAMPLE_TRIALS = 3


def _valid(z: np.ndarray, mask) -> np.ndarray:
    """float64[rows, latent]: the latents of the valid bins."""
    z = np.asarray(z, dtype=np.float64)
    return z.reshape(-1, z.shape[2]) if mask is None else z[np.asarray(mask, dtype=bool)[:len(z)]]


def _masked_moments(z: np.ndarray, mask) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over trials per (time, latent), valid bins only (NaN where no trial reaches)."""
    z = np.asarray(z, dtype=np.float64)
    valid = np.ones(z.shape[:2], bool) if mask is None else np.asarray(mask, dtype=bool)[:len(z)]
    w = valid[..., None].astype(np.float64)
    n = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (z * w).sum(axis=0) / n
        std = np.sqrt(((z - mean) ** 2 * w).sum(axis=0) / n)
    return mean, std


def autoencoder_vs_diffusion(autoencoder, generated: dict, bin_width: float, real_mask=None,
                             masks: dict | None = None):
    """Row 1: distribution of each latent channel (autoencoder latents of the real training trials, grey, vs each
    set's generated latents); row 2: its mean over trials (line) +- std (band) against time."""
    masks = masks or {}
    dims = min(MAX_DIMS, autoencoder.shape[2], *(np.shape(z)[2] for z in generated.values()))
    fig, axes = plt.subplots(2, dims, figsize=(3.4 * dims, 5.8), squeeze=False)
    real_rows = _valid(autoencoder, real_mask)
    items = [("real (autoencoder)", autoencoder, real_mask, REAL_COLOR)]
    items += [(name, z, masks.get(name), color) for (name, z), color in zip(generated.items(), colors(len(generated)))]
    for d in range(dims):
        rows = [_valid(z, m)[:, d] for _, z, m, _ in items]
        lo, hi = np.nanpercentile(np.concatenate(rows), [0.5, 99.5])
        edges = np.linspace(lo, hi + 1e-9, 40)
        ax = axes[0, d]
        for (name, _, _, color), values in zip(items, rows):
            if color == REAL_COLOR:
                ax.hist(values, bins=edges, density=True, color=color, alpha=0.45, label=name)
            else:
                ax.hist(values, bins=edges, density=True, histtype="step", color=color, lw=1.5, label=name)
        ax.set(title=f"latent {d + 1}: distribution", xlabel="latent value (a.u.)", ylabel="density")
        ax = axes[1, d]
        for name, z, mask, color in items:
            mean, std = _masked_moments(z, mask)
            t = (np.arange(mean.shape[0]) + 0.5) * bin_width
            ax.plot(t, mean[:, d], color=color, lw=2 if color == REAL_COLOR else 1.2, label=name)
            ax.fill_between(t, mean[:, d] - std[:, d], mean[:, d] + std[:, d], color=color, alpha=0.15, lw=0)
        ax.set(title=f"latent {d + 1}: mean ± std over trials", xlabel="time in trial (s)", ylabel="latent (a.u.)")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


def _plane(n_dims: int) -> tuple[int, int]:
    """The two latent channels drawn against each other: x and z of a Lorenz state (the butterfly), else 1 and 2."""
    return (0, 2) if n_dims >= 3 else (0, min(1, n_dims - 1))


def ground_truth(truth_train, train_counts, bin_width: float, sets: dict, truth_heldout=None, heldout_counts=None,
                 train_mask=None, heldout_mask=None, masks: dict | None = None):
    """Ground-truth latents vs latents decoded from spikes: a ridge decoder (30 ms-smoothed counts -> true latents)
    fitted on the real training trials, applied to held-out real trials (R^2 against their truth in the title)
    and to each generated set; N_EXAMPLE_TRIALS trials each in the x-z plane (x-y with fewer than 3 latents)."""
    masks = masks or {}
    std_bins = DECODER_SMOOTHING_S / float(bin_width)
    decoder = RidgeDecoder.fit(smooth_counts(train_counts, std_bins, train_mask), truth_train, mask=train_mask)

    def decode(counts, mask):
        smooth = smooth_counts(counts, std_bins, mask)
        return decoder.predict(smooth.reshape(-1, smooth.shape[2])).reshape(*smooth.shape[:2], -1)

    a, b = _plane(truth_train.shape[2])
    if truth_heldout is not None and heldout_counts is not None and len(truth_heldout):
        shown_truth, real_counts, real_mask, which = truth_heldout, heldout_counts, heldout_mask, "held-out"
    else:
        shown_truth, real_counts, real_mask, which = truth_train, train_counts, train_mask, "train"
    real_decoded = decode(real_counts, real_mask)
    valid = np.ones(real_decoded.shape[:2], bool) if real_mask is None else np.asarray(real_mask, bool)
    r2 = r2_score(np.asarray(shown_truth)[valid], real_decoded[valid])
    panels = [(f"ground truth (real {which})", shown_truth, real_mask, "k"),
              (f"decoded, real {which} (R² {r2:.2f})", real_decoded, real_mask, REAL_COLOR)]
    panels += [(f"decoded, {name}", decode(counts, masks.get(name)), masks.get(name), color)
               for (name, counts), color in zip(sets.items(), colors(len(sets)))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.5), squeeze=False,
                             sharex=True, sharey=True)
    names = ("x", "y", "z")
    for ax, (title, z, mask, color) in zip(axes[0], panels):
        for k in range(min(N_EXAMPLE_TRIALS, len(z))):
            n = z.shape[1] if mask is None else int(np.asarray(mask)[k].sum())
            ax.plot(z[k, :n, a], z[k, :n, b], color=color, lw=0.8, alpha=0.8)
        ax.set(title=title, xlabel=f"latent {names[a] if z.shape[2] <= 3 else a + 1}")
    axes[0, 0].set_ylabel(f"latent {names[b] if truth_train.shape[2] <= 3 else b + 1}")
    fig.tight_layout()
    return fig
