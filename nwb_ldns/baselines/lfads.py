"""LFADS baseline (Pandarinath et al. 2018; the LDNS paper's AutoLFADS row, ldns-reference.md section 8) in plain
torch: whole-trial bidirectional GRU encoder -> Gaussian initial-condition (IC) posterior with a learned Gaussian
prior (init N(0, 0.1)) -> generator GRU with no input (no controller, the reference's setting) -> linear factors
(unit-norm rows) -> Poisson rates exp(readout(factors)).

Training: coordinated dropout on the input (the reconstruction scores the dropped entries only), dropout, the
reconstruction as a mean Poisson NLL per scored entry + kl_beta * KL(posterior || prior) per entry (summed over IC
dimensions, averaged over trials, divided by bins x units: kl_beta = 1 is the ELBO at any session size, and
lfads-torch's kl_ic_scale is kl_beta / (bins x units); the reference's PBT range 1e-6..1e-3 is kl_beta 0.025..25 on
MC_Maze) + l2_gen_scale * 0.5 |W_hh|^2 / numel on the generator's recurrent weights, the
two penalties ramped up linearly over their first epochs (lfads-torch's scales). Adam with gradient clipping; no
population-based search (the reference's AutoLFADS searched the penalties and rates: ours are fixed and settable).

Sampling draws ICs from the learned prior and runs the generator for any number of bins (longer than training
too: the reference drew 16x the training length on Lorenz). Variable-length trials are encoded with packed
sequences and scored on their valid bins; samples copy the lengths of random training trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from nwb_ldns.baselines.common import check_n, generated_dataset
from nwb_ldns.baselines.trainer import (BaselineSpec, TrainedBaseline, check_fraction, check_positive,
                                        template_dataset)
from nwb_ldns.errors import OptionError
from nwb_ldns.models import coordinated_dropout

MAX_LOG_RATE = 10.0  # exp(10) ~ 22000 spikes per bin: a cap that keeps an untrained model's rates finite
POSTERIOR_VAR_MIN = 1e-4  # lfads-torch's ic_post_var_min

_COMMON: dict[str, Any] = {
    "seed": 0,
    "ic_enc_dim": 64,
    "ic_dim": 64,
    "gen_dim": 100,
    "fac_dim": 40,
    "cd_rate": 0.3,
    "dropout": 0.3,
    "prior_var": 0.1,
    "kl_beta": 2.0,  # KL weight relative to the ELBO (ours): lfads-torch's kl_ic_scale = kl_beta / (bins x units)
    "l2_gen_scale": 1e-3,  # ours within 1e-4..1
    "kl_ramp_epochs": 80,  # lfads-torch's kl_increase_epoch / l2_increase_epoch
    "l2_ramp_epochs": 80,
    "lr": 4e-3,
    "batch_size": 256,
    "grad_clip": 200.0,
    "epochs": 1000,
    "checkpoint_every": 25,
}

PRESETS: dict[str, dict[str, Any]] = {
    "lfads": dict(_COMMON),  # ldns-reference.md section 8 (AutoLFADS on MC_Maze / Lorenz)
    "tiny": {**_COMMON, "ic_enc_dim": 16, "ic_dim": 8, "gen_dim": 32, "fac_dim": 8, "dropout": 0.05,
             "kl_ramp_epochs": 5, "l2_ramp_epochs": 5, "lr": 1e-2, "batch_size": 32, "epochs": 30,
             "checkpoint_every": 5},
}


def check_config(config: dict[str, Any]) -> None:
    for key in ("ic_enc_dim", "ic_dim", "gen_dim", "fac_dim"):
        if config[key] < 1:
            raise OptionError(f"--set {key}={config[key]} must be a positive integer")
    check_positive(config, ("prior_var",))
    check_fraction(config, ("cd_rate", "dropout"))
    for key in ("kl_beta", "l2_gen_scale", "kl_ramp_epochs", "l2_ramp_epochs"):
        if config[key] < 0:
            raise OptionError(f"--set {key}={config[key]} must be >= 0")


def kl_diagonal_gaussians(mean: torch.Tensor, var: torch.Tensor, prior_mean: torch.Tensor,
                          prior_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, var) || N(prior_mean, prior_var)) per dimension (elementwise, diagonal covariances)."""
    return 0.5 * (torch.log(prior_var) - torch.log(var) + (var + (mean - prior_mean) ** 2) / prior_var - 1.0)


def ramp(step: int, steps_per_epoch: int, epochs: int) -> float:
    """Linear 0 -> 1 over the first `epochs` epochs (by optimiser step); 1 when epochs is 0."""
    if epochs <= 0:
        return 1.0
    return min(1.0, (step + 1) / (epochs * steps_per_epoch))


class LFADSNet(nn.Module):
    """The LFADS network without a controller (see the module docstring)."""

    def __init__(self, n_units: int, ic_enc_dim: int, ic_dim: int, gen_dim: int, fac_dim: int, dropout: float,
                 prior_var: float) -> None:
        super().__init__()
        self.encoder = nn.GRU(n_units, ic_enc_dim, batch_first=True, bidirectional=True)
        self.ic_mean = nn.Linear(2 * ic_enc_dim, ic_dim)
        self.ic_logvar = nn.Linear(2 * ic_enc_dim, ic_dim)
        self.prior_mean = nn.Parameter(torch.zeros(ic_dim))
        self.prior_logvar = nn.Parameter(torch.full((ic_dim,), math.log(prior_var)))
        self.ic_to_g0 = nn.Linear(ic_dim, gen_dim)
        self.generator = nn.GRU(1, gen_dim, batch_first=True)  # fed zeros: no inputs without a controller
        self.factors = nn.Linear(gen_dim, fac_dim, bias=False)  # rows normalised to unit length in `decode`
        self.readout = nn.Linear(fac_dim, n_units)
        self.drop = nn.Dropout(dropout)

    def encode(self, counts: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """IC posterior (mean, variance) from the whole trial [B, T, N]; lengths: valid bins of each trial."""
        x = self.drop(counts)
        if lengths is not None and bool((lengths < counts.shape[1]).any()):
            x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(x)  # [2, B, ic_enc]: last forward state, first backward state
        h = self.drop(torch.cat([h[0], h[1]], dim=-1))
        return self.ic_mean(h), torch.exp(self.ic_logvar(h).clamp(-20.0, 20.0)) + POSTERIOR_VAR_MIN

    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prior_mean, torch.exp(self.prior_logvar)

    def decode(self, ic: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(log rates [B, T, N], factors [B, T, F]) of the generator run from the ICs [B, ic] for n_bins."""
        g0 = self.ic_to_g0(self.drop(ic)).unsqueeze(0)
        states, _ = self.generator(ic.new_zeros(ic.shape[0], n_bins, 1), g0.contiguous())
        factors = F.linear(self.drop(states), F.normalize(self.factors.weight, dim=1))
        return self.readout(factors).clamp(max=MAX_LOG_RATE), factors

    def recurrent_l2(self) -> torch.Tensor:
        weight = self.generator.weight_hh_l0
        return 0.5 * weight.pow(2).sum() / weight.numel()


def build(config: dict[str, Any], data: dict[str, Any]) -> LFADSNet:
    net = LFADSNet(int(data["n_units"]), config["ic_enc_dim"], config["ic_dim"], config["gen_dim"],
                   config["fac_dim"], config["dropout"], config["prior_var"])
    if "mean_counts" in data:  # start the readout at the training mean rates: the first steps learn dynamics
        with torch.no_grad():
            net.readout.bias.copy_(torch.log(torch.tensor(data["mean_counts"]).clamp(min=1e-3)))
    return net


def tensors(trials: xr.Dataset, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    counts = np.nan_to_num(np.asarray(trials["counts"].values, dtype=np.float32))
    return {"counts": torch.from_numpy(counts), "mask": torch.from_numpy(trials["mask"].values.astype(bool))}


def loss(module: LFADSNet, batch: dict[str, torch.Tensor], config: dict[str, Any], step: int, steps_per_epoch: int,
         training: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruction (dropped entries, valid bins) + ramped KL and generator L2 (see the module docstring)."""
    counts, mask = batch["counts"], batch["mask"]
    valid = mask.unsqueeze(-1).to(counts.dtype)
    if training and config["cd_rate"] > 0:
        x_in, dropped = coordinated_dropout(counts, config["cd_rate"])
        weight = dropped * valid
    else:
        x_in, weight = counts, valid.expand_as(counts)
    mean, var = module.encode(x_in * valid, mask.sum(dim=1))
    ic = mean + var.sqrt() * torch.randn_like(mean) if training else mean
    log_rates, _ = module.decode(ic, counts.shape[1])
    nll = F.poisson_nll_loss(log_rates, counts, log_input=True, full=False, reduction="none")
    recon = (nll * weight).sum() / weight.sum().clamp(min=1.0)
    kl = kl_diagonal_gaussians(mean, var, *module.prior()).sum(dim=-1).mean() / counts[0].numel()
    l2 = module.recurrent_l2()
    kl_w = ramp(step, steps_per_epoch, config["kl_ramp_epochs"]) if training else 1.0
    l2_w = ramp(step, steps_per_epoch, config["l2_ramp_epochs"]) if training else 1.0
    total = recon + kl_w * config["kl_beta"] * kl + l2_w * config["l2_gen_scale"] * l2
    return total, {"recon": float(recon.detach()), "kl": float(kl.detach()), "l2": float(l2.detach())}


SPEC = BaselineSpec(name="lfads", model_name="LFADS", presets=PRESETS, default_preset="lfads",
                    check_config=check_config, build=build, loss=loss, tensors=tensors)


@dataclass
class LFADS(TrainedBaseline):
    """A trained LFADS baseline (network LFADSNet)."""

    SPEC: ClassVar[BaselineSpec] = SPEC

    def describe(self) -> dict[str, Any]:
        return {"baseline": "lfads", **self.config, "n_train_trials": self.n_train,
                "n_bins": self.data["n_bins"], "n_units": self.data["n_units"],
                "observation": "rates = exp(readout(factors)), Poisson counts", "controller": False}

    @torch.no_grad()
    def initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws [n, ic_dim] from the learned prior N(prior_mean, exp(prior_logvar))."""
        prior_mean, prior_var = self.net.prior()
        return prior_mean + prior_var.sqrt() * torch.randn(n, prior_mean.shape[0], generator=generator)

    @torch.no_grad()
    def sample_rates(self, n: int, n_bins: int, generator: torch.Generator, chunk: int = 512
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(rates [n, n_bins, N], factors [n, n_bins, F]) from ICs drawn from the learned prior."""
        self.net.eval()
        ic = self.initial_conditions(n, generator)
        rates, factors = [], []
        for part in ic.split(chunk):
            log_rates, fac = self.net.decode(part, n_bins)
            rates.append(torch.exp(log_rates).numpy())
            factors.append(fac.numpy())
        return np.concatenate(rates), np.concatenate(factors)

    def sample(self, n: int, *, seed: int = 0, n_bins: int | None = None) -> xr.Dataset:
        """n trials: IC ~ prior -> generator -> rates -> Poisson counts. Without n_bins each trial copies the length
        of a random training trial; with n_bins every trial has that many bins (any length)."""
        n = check_n(n)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(seed))
        n_bins, mask = self.trial_lengths(n, n_bins, rng)
        rates, factors = self.sample_rates(n, n_bins, generator)
        rates = rates * mask[:, :, None]
        counts = rng.poisson(rates.astype(np.float64)).astype(np.float32)
        return generated_dataset(template_dataset(self.data), counts, rates, mask, model_name="LFADS",
                                 config=self.describe(), parameters=self.parameters(), seed=seed,
                                 latents=factors * mask[:, :, None])

