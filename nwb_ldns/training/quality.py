"""What `fit` says at the end: does the model beat a PSTH on the held-out (validation) trials?

Two checks, both against the trial-averaged train PSTH, which a user gets for free:
- spike prediction: the autoencoder predicts randomly dropped entries of each validation trial from the rest
  (the coordinated-dropout task it trained on); Poisson NLL per entry vs the PSTH's on the same entries;
- samples: population-count KL and correlation RMSE of DDIM samples vs the validation trials, against PSTH-Poisson
  samples of the same size.
Why: a model that loses to the PSTH on its own held-out trials is not worth sampling, and the user should hear it
from `fit`, not discover it later.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from nwb_ldns.errors import GeneratedRangeWarning
from nwb_ldns.models import masked_poisson_nll
from nwb_ldns.training.trial_store import TrialCounts, masked_sum_over_trials

PREDICTION_DROPOUT = 0.25
PREDICTION_DRAWS = 4
QUALITY_SAMPLES = 128
# The check samples as `nwb-ldns sample` does by default (ancestral DDPM over every step): DDIM-50 over-disperses
# short trials (20 bins: +12% spikes, +20% population-count variance, docs/results.md) and would misjudge the model.
QUALITY_SAMPLER = "ddpm"
# Count entries (trials x bins x units) of validation trials the check uses at most: a big session (720 validation
# trials x 100 bins x 2,000 units) is checked on an even subset of its validation trials, so that the real trials,
# the samples and the PSTH-Poisson draws stay near 100 MB each.
QUALITY_MAX_COUNTS = 1 << 25


def _checked_trials(val: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """(the validation tensors the check uses, how many trials it left out or None): every trial unless they hold
    more than QUALITY_MAX_COUNTS entries, then evenly spaced ones; cached counts are read into memory here."""
    n, bins, units = (int(x) for x in val["counts"].shape)
    limit = max(1, QUALITY_MAX_COUNTS // max(1, bins * units))
    if n <= limit and not isinstance(val["counts"], TrialCounts):
        return val, None
    chosen = torch.from_numpy(np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64)))
    return {key: value[chosen] for key, value in val.items()}, (n - len(chosen)) or None


def train_psth(counts: torch.Tensor, mask: torch.Tensor, smoothing_bins: float = 0.0) -> torch.Tensor:
    """Mean count per bin and unit [L, N] over the valid bins of the train trials, optionally Gaussian-smoothed."""
    psth = masked_sum_over_trials(counts, mask) / mask[..., None].to(counts.dtype).sum(0).clamp_min(1.0)
    if smoothing_bins <= 0:
        return psth
    half = int(np.ceil(3 * smoothing_bins))
    offsets = torch.arange(-half, half + 1, dtype=counts.dtype)
    kernel = torch.exp(-0.5 * (offsets / smoothing_bins) ** 2)
    padded = torch.nn.functional.pad(psth.T[:, None, :], (half, half))
    ones = torch.nn.functional.pad(torch.ones(1, 1, psth.shape[0], dtype=counts.dtype), (half, half))
    num = torch.nn.functional.conv1d(padded, kernel[None, None])[:, 0, :]
    den = torch.nn.functional.conv1d(ones, kernel[None, None])[0, 0]
    return (num / den).T.contiguous()  # edge-corrected: no dip at the trial borders


@torch.no_grad()
def prediction_nll(autoencoder: torch.nn.Module, counts: torch.Tensor, mask: torch.Tensor, psth: torch.Tensor,
                   seed: int) -> tuple[float, float]:
    """(autoencoder, PSTH) Poisson NLL per dropped valid entry of the validation trials, same entries for both."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    valid = mask[..., None].expand_as(counts).to(counts.dtype)
    ae_sum, psth_sum, n = 0.0, 0.0, 0.0
    base = psth.clamp_min(1e-4)[None].expand_as(counts)
    for _ in range(PREDICTION_DRAWS):
        dropped = (torch.rand(counts.shape, generator=gen) < PREDICTION_DROPOUT).to(counts.dtype) * valid
        x_in = counts * (1.0 - dropped) / (1.0 - PREDICTION_DROPOUT)
        rates, _ = autoencoder(x_in.to(device))
        rates = rates.float().cpu()
        ae_sum += float(masked_poisson_nll(rates, counts, dropped)) * counts.numel()
        psth_sum += float(masked_poisson_nll(base, counts, dropped)) * counts.numel()
        n += float(dropped.sum())
    return ae_sum / max(n, 1.0), psth_sum / max(n, 1.0)


def _sample_statistics(model, val: dict[str, torch.Tensor], psth: torch.Tensor, seed: int) -> dict[str, float]:
    from nwb_ldns.metrics.headline import headline_statistics

    n = max(QUALITY_SAMPLES, int(val["counts"].shape[0]))
    real = val["counts"].numpy()
    real_mask = val["mask"].numpy()
    with warnings.catch_warnings():  # the check's own verdict says what matters; range warnings are for `sample`
        warnings.simplefilter("ignore", GeneratedRangeWarning)
        conditions = None
        if (model.data.get("condition") or {}).get("kind") == "trace":  # the validation trials' own traces
            conditions = np.resize(np.arange(real.shape[0]), n)
            conditions = val["behavior"].numpy()[conditions]
        generated = model.sample(n, seed=seed, sampler=QUALITY_SAMPLER, progress=False, conditions=conditions)
    steps = int(generated.attrs["sampler_steps"])
    rng = np.random.default_rng(seed)
    template = rng.integers(0, real.shape[0], size=n)
    psth_counts = rng.poisson(psth.numpy()[None] * real_mask[template][..., None]).astype(np.float32)
    maxval = int(max(real.sum(2).max(), generated["counts"].values.sum(2).max(), psth_counts.sum(2).max()))
    ldns = headline_statistics(real, generated["counts"].values, model.data["bin_width"], real_mask=real_mask,
                               model_mask=generated["mask"].values, maxval=maxval)
    base = headline_statistics(real, psth_counts, model.data["bin_width"], real_mask=real_mask,
                               model_mask=real_mask[template], maxval=maxval)
    return {"samples": n, "sampler": f"{QUALITY_SAMPLER}-{steps}", "kl_ldns": ldns["kl_pop_count"],
            "kl_psth": base["kl_pop_count"], "corr_ldns": ldns["rmse_corr"], "corr_psth": base["rmse_corr"]}


def fit_quality(model, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
    """{"numbers": JSON-able figures, "lines": what fit prints}; nothing when there are no validation trials."""
    if val["counts"].shape[0] == 0:
        return {"numbers": {}, "lines": ["no validation trials: the fit cannot be checked against a PSTH"]}
    val, left_out = _checked_trials(val)
    psth = train_psth(train["counts"], train["mask"])
    ae_nll, psth_nll = prediction_nll(model.autoencoder, val["counts"], val["mask"], psth, seed)
    numbers: dict[str, Any] = {"val_prediction_nll_autoencoder": ae_nll, "val_prediction_nll_psth": psth_nll}
    n_val = int(val["counts"].shape[0])
    if left_out:
        numbers["val_trials_left_out"] = left_out
    lines = [f"held-out check on {n_val} validation trials: the autoencoder predicts dropped spikes with Poisson "
             f"NLL {ae_nll:.4f} per entry vs {psth_nll:.4f} for the train PSTH "
             f"({'better' if ae_nll < psth_nll else 'WORSE'})"]
    stats = _sample_statistics(model, val, psth, seed)
    numbers.update(stats)
    verdict = [name for name, ours, theirs in (("population-count KL", stats["kl_ldns"], stats["kl_psth"]),
                                                ("correlation RMSE", stats["corr_ldns"], stats["corr_psth"]))
               if ours > theirs]
    lines.append(f"{stats['samples']} {stats['sampler'].upper()} samples vs the validation trials: KL "
                 f"{stats['kl_ldns']:.4f} (PSTH-Poisson {stats['kl_psth']:.4f}), corr RMSE {stats['corr_ldns']:.4f} "
                 f"(PSTH-Poisson {stats['corr_psth']:.4f})")
    if ae_nll >= psth_nll or verdict:
        lost = ", ".join(verdict + (["spike prediction"] if ae_nll >= psth_nll else []))
        lines.append(f"warning: on the held-out trials this model does not beat a PSTH on {lost}; the budget may be "
                     "too small or the session may have little shared variability: try --preset auto, more epochs "
                     "(--epochs), or compare with `nwb-ldns baseline psth` and `nwb-ldns evaluate`")
    return {"numbers": numbers, "lines": lines}
