"""TNDM baseline (Hurwitz et al. 2021, Targeted Neural Dynamical Modeling; the LDNS paper's TNDM row,
ldns-reference.md section 8) in plain torch: an LFADS-like sequential VAE whose latent factors come in two sets.

- whole-trial bidirectional GRU encoder (encoded_dim units each way) of the spikes;
- two branches, behaviourally *relevant* (rel_factors) and *irrelevant* (irr_factors), each with its own Gaussian
  initial-condition (IC, encoded_dim) posterior and learned Gaussian prior (init N(0, prior_var)), its own
  generator GRU (encoded_dim, no inputs) and its own linear factors;
- Poisson rates = exp(readout([relevant, irrelevant] factors)) (the reference's 0.005 * exp(log_f): our readout
  bias starts at the log mean count instead);
- a linear behaviour decoder from the relevant factors only: the behaviour loss cannot shape the irrelevant branch.

Loss = mean Poisson NLL per valid entry + behavior_weight * MSE of the behaviour (valid, finite bins) + ramped
kl_beta * KL of both ICs (relative to the ELBO, as nwb_ldns.baselines.lfads) + ramped l2_gen_scale * recurrent L2
of both generators. Ours: the behaviour is standardised per dimension on the training trials before the MSE (so
the weight 0.2 means the same for m/s and mm/s); a constant learning rate (the reference: x0.95 on plateau).

Sampling draws both ICs from their priors and runs both generators for any number of bins; samples carry the
decoded behaviour (in the session's units) as `behavior` and the factors [relevant, irrelevant] as `latents`.
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
from nwb_ldns.baselines.lfads import MAX_LOG_RATE, POSTERIOR_VAR_MIN, kl_diagonal_gaussians, ramp
from nwb_ldns.baselines.trainer import (BaselineSpec, TrainedBaseline, check_fraction, check_positive,
                                        template_dataset)
from nwb_ldns.errors import OptionError, SessionContentError

_COMMON: dict[str, Any] = {
    "seed": 0,
    "encoded_dim": 64,  # encoder GRU (each direction), each IC and each generator GRU
    "rel_factors": 5,
    "irr_factors": 5,
    "dropout": 0.15,
    "prior_var": 0.1,
    "kl_beta": 1.0,  # KL weight relative to the ELBO (ours, as LFADS's)
    "l2_gen_scale": 1.0,  # the reference's recurrent L2 1.0
    "kl_ramp_epochs": 80,
    "l2_ramp_epochs": 80,
    "behavior_weight": 0.2,
    "lr": 1e-2,
    "batch_size": 128,
    "grad_clip": 200.0,
    "epochs": 1000,
    "checkpoint_every": 25,
}

PRESETS: dict[str, dict[str, Any]] = {
    "tndm": dict(_COMMON),  # ldns-reference.md section 8
    "tiny": {**_COMMON, "encoded_dim": 16, "dropout": 0.05, "kl_ramp_epochs": 5, "l2_ramp_epochs": 5,
             "batch_size": 32, "epochs": 30, "checkpoint_every": 5},
}

NO_BEHAVIOUR = ("the session has no behaviour (a `behavior` variable), which TNDM decodes from its relevant factors; "
                "load it with --behavior PATH (e.g. --behavior processing/behavior/hand_vel; `nwb-ldns inspect` "
                "lists the series) or --recipe mc_maze")


def check_config(config: dict[str, Any]) -> None:
    for key in ("encoded_dim", "rel_factors", "irr_factors"):
        if config[key] < 1:
            raise OptionError(f"--set {key}={config[key]} must be a positive integer")
    check_positive(config, ("prior_var",))
    check_fraction(config, ("dropout",))
    for key in ("kl_beta", "l2_gen_scale", "kl_ramp_epochs", "l2_ramp_epochs", "behavior_weight"):
        if config[key] < 0:
            raise OptionError(f"--set {key}={config[key]} must be >= 0")


class Branch(nn.Module):
    """One set of factors: IC posterior head, learned Gaussian IC prior, generator GRU, linear factors."""

    def __init__(self, enc_dim: int, ic_dim: int, n_factors: int, prior_var: float) -> None:
        super().__init__()
        self.ic_mean = nn.Linear(enc_dim, ic_dim)
        self.ic_logvar = nn.Linear(enc_dim, ic_dim)
        self.prior_mean = nn.Parameter(torch.zeros(ic_dim))
        self.prior_logvar = nn.Parameter(torch.full((ic_dim,), math.log(prior_var)))
        self.ic_to_g0 = nn.Linear(ic_dim, ic_dim)
        self.generator = nn.GRU(1, ic_dim, batch_first=True)  # fed zeros: no inputs
        self.factors = nn.Linear(ic_dim, n_factors, bias=False)

    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ic_mean(h), torch.exp(self.ic_logvar(h).clamp(-20.0, 20.0)) + POSTERIOR_VAR_MIN

    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prior_mean, torch.exp(self.prior_logvar)

    def run(self, ic: torch.Tensor, n_bins: int, drop: nn.Module) -> torch.Tensor:
        """Factors [B, n_bins, F] of the generator started from the ICs [B, ic]."""
        g0 = self.ic_to_g0(drop(ic)).unsqueeze(0)
        states, _ = self.generator(ic.new_zeros(ic.shape[0], n_bins, 1), g0.contiguous())
        return self.factors(drop(states))

    def recurrent_l2(self) -> torch.Tensor:
        weight = self.generator.weight_hh_l0
        return 0.5 * weight.pow(2).sum() / weight.numel()


class TNDMNet(nn.Module):
    """Encoder, relevant and irrelevant branches, Poisson readout and the behaviour decoder (module docstring)."""

    def __init__(self, n_units: int, n_behavior: int, encoded_dim: int, rel_factors: int, irr_factors: int,
                 dropout: float, prior_var: float) -> None:
        super().__init__()
        self.encoder = nn.GRU(n_units, encoded_dim, batch_first=True, bidirectional=True)
        self.relevant = Branch(2 * encoded_dim, encoded_dim, rel_factors, prior_var)
        self.irrelevant = Branch(2 * encoded_dim, encoded_dim, irr_factors, prior_var)
        self.readout = nn.Linear(rel_factors + irr_factors, n_units)
        self.behavior = nn.Linear(rel_factors, n_behavior)
        self.drop = nn.Dropout(dropout)
        # behaviour standardisation of the training trials (from config.json's data, not the weights file)
        self.register_buffer("behavior_mean", torch.zeros(n_behavior), persistent=False)
        self.register_buffer("behavior_std", torch.ones(n_behavior), persistent=False)

    def encode(self, counts: torch.Tensor, lengths: torch.Tensor | None = None
               ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """((mean, var) relevant, (mean, var) irrelevant) IC posteriors of whole trials [B, T, N]."""
        x = self.drop(counts)
        if lengths is not None and bool((lengths < counts.shape[1]).any()):
            x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(x)
        h = self.drop(torch.cat([h[0], h[1]], dim=-1))
        return self.relevant.posterior(h), self.irrelevant.posterior(h)

    def decode(self, ic_rel: torch.Tensor, ic_irr: torch.Tensor, n_bins: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log rates [B, T, N], relevant factors [B, T, R], irrelevant factors [B, T, I])."""
        rel = self.relevant.run(ic_rel, n_bins, self.drop)
        irr = self.irrelevant.run(ic_irr, n_bins, self.drop)
        return self.readout(torch.cat([rel, irr], dim=-1)).clamp(max=MAX_LOG_RATE), rel, irr

    def decode_behavior(self, rel_factors: torch.Tensor) -> torch.Tensor:
        """Standardised behaviour [B, T, D] from the relevant factors only."""
        return self.behavior(rel_factors)

    def recurrent_l2(self) -> torch.Tensor:
        return self.relevant.recurrent_l2() + self.irrelevant.recurrent_l2()


def check_behaviour(session: xr.Dataset) -> None:
    if "behavior" not in session:
        raise SessionContentError(NO_BEHAVIOUR)
    if session["behavior"].ndim != 3 or session["behavior"].shape[2] < 1:
        raise SessionContentError(f"the session's behavior has shape {session['behavior'].shape}, not (trial, time, "
                                  "dims); load it with a 1-3 column --behavior series")


def describe(train: xr.Dataset, config: dict[str, Any]) -> dict[str, Any]:
    """Behaviour dimensions and their mean / std over the valid, finite training bins (sampling needs them)."""
    check_behaviour(train)
    values = np.asarray(train["behavior"].values, dtype=np.float64)[train["mask"].values]
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) < 2:
        raise SessionContentError("the session's behaviour is NaN in every training bin; pass a --behavior series "
                                  "that covers the trials")
    dims = train["behavior_dim"].values if "behavior_dim" in train.coords else np.arange(values.shape[1])
    std = values.std(axis=0)
    return {"behavior_dims": [str(d) for d in dims], "behavior_mean": [float(x) for x in values.mean(axis=0)],
            "behavior_std": [float(x) if x > 1e-12 else 1.0 for x in std]}


def build(config: dict[str, Any], data: dict[str, Any]) -> TNDMNet:
    net = TNDMNet(int(data["n_units"]), len(data["behavior_dims"]), config["encoded_dim"], config["rel_factors"],
                  config["irr_factors"], config["dropout"], config["prior_var"])
    with torch.no_grad():
        net.behavior_mean.copy_(torch.tensor(data["behavior_mean"]))
        net.behavior_std.copy_(torch.tensor(data["behavior_std"]))
        if "mean_counts" in data:  # start the readout at the training mean rates
            net.readout.bias.copy_(torch.log(torch.tensor(data["mean_counts"]).clamp(min=1e-3)))
    return net


def tensors(trials: xr.Dataset, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    check_behaviour(trials)
    counts = np.nan_to_num(np.asarray(trials["counts"].values, dtype=np.float32))
    mask = trials["mask"].values.astype(bool)
    behavior = np.asarray(trials["behavior"].values, dtype=np.float32)
    scored = mask & np.isfinite(behavior).all(axis=2)
    return {"counts": torch.from_numpy(counts), "mask": torch.from_numpy(mask),
            "behavior": torch.from_numpy(np.nan_to_num(behavior)), "behavior_mask": torch.from_numpy(scored)}


def behaviour_mse(module: TNDMNet, rel_factors: torch.Tensor, behavior: torch.Tensor, scored: torch.Tensor
                  ) -> torch.Tensor:
    """Mean squared error of the standardised behaviour decoded from the relevant factors, on scored bins."""
    target = (behavior - module.behavior_mean) / module.behavior_std
    weight = scored.unsqueeze(-1).to(behavior.dtype)
    error = (module.decode_behavior(rel_factors) - target).pow(2) * weight
    return error.sum() / (weight.sum() * behavior.shape[-1]).clamp(min=1.0)


def loss(module: TNDMNet, batch: dict[str, torch.Tensor], config: dict[str, Any], step: int, steps_per_epoch: int,
         training: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Poisson reconstruction + behaviour MSE + ramped KL of both ICs + ramped L2 (module docstring)."""
    counts, mask = batch["counts"], batch["mask"]
    valid = mask.unsqueeze(-1).to(counts.dtype)
    (mean_r, var_r), (mean_i, var_i) = module.encode(counts * valid, mask.sum(dim=1))
    if training:
        ic_r = mean_r + var_r.sqrt() * torch.randn_like(mean_r)
        ic_i = mean_i + var_i.sqrt() * torch.randn_like(mean_i)
    else:
        ic_r, ic_i = mean_r, mean_i
    log_rates, rel, _ = module.decode(ic_r, ic_i, counts.shape[1])
    nll = F.poisson_nll_loss(log_rates, counts, log_input=True, full=False, reduction="none")
    weight = valid.expand_as(counts)
    recon = (nll * weight).sum() / weight.sum().clamp(min=1.0)
    behaviour = behaviour_mse(module, rel, batch["behavior"], batch["behavior_mask"])
    kl = (kl_diagonal_gaussians(mean_r, var_r, *module.relevant.prior()).sum(dim=-1)
          + kl_diagonal_gaussians(mean_i, var_i, *module.irrelevant.prior()).sum(dim=-1)).mean() / counts[0].numel()
    l2 = module.recurrent_l2()
    kl_w = ramp(step, steps_per_epoch, config["kl_ramp_epochs"]) if training else 1.0
    l2_w = ramp(step, steps_per_epoch, config["l2_ramp_epochs"]) if training else 1.0
    total = (recon + config["behavior_weight"] * behaviour + kl_w * config["kl_beta"] * kl
             + l2_w * config["l2_gen_scale"] * l2)
    return total, {"recon": float(recon.detach()), "behavior": float(behaviour.detach()), "kl": float(kl.detach()),
                   "l2": float(l2.detach())}


SPEC = BaselineSpec(name="tndm", model_name="TNDM", presets=PRESETS, default_preset="tndm",
                    check_config=check_config, build=build, loss=loss, tensors=tensors, describe=describe)


@dataclass
class TNDM(TrainedBaseline):
    """A trained TNDM baseline (network TNDMNet)."""

    SPEC: ClassVar[BaselineSpec] = SPEC

    @classmethod
    def fit(cls, session: xr.Dataset, model_dir: str | Path, **options) -> "TNDM":
        """Train on the session's train split into model_dir (options: preset, overrides, resume, overwrite,
        progress, on_epoch_end, inputs; see nwb_ldns.baselines.trainer.fit_baseline_dir). The session must have
        behaviour."""
        check_behaviour(session)
        return super().fit(session, model_dir, **options)

    def describe(self) -> dict[str, Any]:
        return {"baseline": "tndm", **self.config, "n_train_trials": self.n_train,
                "n_bins": self.data["n_bins"], "n_units": self.data["n_units"],
                "behavior_dims": self.data["behavior_dims"],
                "observation": "rates = exp(readout([relevant, irrelevant] factors)), Poisson counts; behaviour = "
                               "linear(relevant factors)"}

    def _destandardise(self, behaviour: torch.Tensor) -> np.ndarray:
        return (behaviour * self.net.behavior_std + self.net.behavior_mean).numpy()

    @torch.no_grad()
    def decode_trials(self, trials: xr.Dataset) -> np.ndarray:
        """Behaviour [trial, time, dims] decoded from given trials' spikes (posterior-mean ICs), session units."""
        self.net.eval()
        batch = tensors(trials, self.config)
        valid = batch["mask"].unsqueeze(-1).to(batch["counts"].dtype)
        (mean_r, _), (mean_i, _) = self.net.encode(batch["counts"] * valid, batch["mask"].sum(dim=1))
        _, rel, _ = self.net.decode(mean_r, mean_i, batch["counts"].shape[1])
        return self._destandardise(self.net.decode_behavior(rel))

    @torch.no_grad()
    def initial_conditions(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws of (relevant, irrelevant) ICs from their learned priors."""
        out = []
        for branch in (self.net.relevant, self.net.irrelevant):
            prior_mean, prior_var = branch.prior()
            out.append(prior_mean + prior_var.sqrt() * torch.randn(n, prior_mean.shape[0], generator=generator))
        return out[0], out[1]

    @torch.no_grad()
    def sample_rates(self, n: int, n_bins: int, generator: torch.Generator, chunk: int = 512
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rates [n, T, N], factors [n, T, R + I], behaviour [n, T, D]) from ICs drawn from the priors."""
        self.net.eval()
        ic_r, ic_i = self.initial_conditions(n, generator)
        rates, factors, behaviour = [], [], []
        for part_r, part_i in zip(ic_r.split(chunk), ic_i.split(chunk)):
            log_rates, rel, irr = self.net.decode(part_r, part_i, n_bins)
            rates.append(torch.exp(log_rates).numpy())
            factors.append(torch.cat([rel, irr], dim=-1).numpy())
            behaviour.append(self._destandardise(self.net.decode_behavior(rel)))
        return np.concatenate(rates), np.concatenate(factors), np.concatenate(behaviour)

    def sample(self, n: int, *, seed: int = 0, n_bins: int | None = None) -> xr.Dataset:
        """n trials: ICs ~ priors -> generators -> rates -> Poisson counts, with the decoded behaviour. Without
        n_bins each trial copies the length of a random training trial; with n_bins every trial has that many."""
        n = check_n(n)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(seed))
        n_bins, mask = self.trial_lengths(n, n_bins, rng)
        rates, factors, behaviour = self.sample_rates(n, n_bins, generator)
        rates = rates * mask[:, :, None]
        counts = rng.poisson(rates.astype(np.float64)).astype(np.float32)
        ds = generated_dataset(template_dataset(self.data), counts, rates, mask, model_name="TNDM",
                               config=self.describe(), parameters=self.parameters(), seed=seed,
                               latents=factors * mask[:, :, None])
        ds["behavior"] = (("trial", "time", "behavior_dim"), (behaviour * mask[:, :, None]).astype(np.float32))
        ds.attrs["behavior_source"] = "decoded"  # the NWB file says decoded, not conditioned on
        return ds.assign_coords(behavior_dim=list(self.data["behavior_dims"]))
