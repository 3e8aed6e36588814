"""pi-VAE baseline (Zhou & Wei 2020; the LDNS paper's supplementary row, ldns-reference.md section 8) in plain torch.

Every valid time bin is one i.i.d. sample x (the counts of all units), as the reference treats them, with a label
u = [cos, sin] of the trial's angle (e.g. the reach angle):
- label prior p(z|u) = N(mean(u), var(u)), two MLPs (60, 60 tanh);
- encoder q(z|x) = N(.) from an MLP (3 x 60 tanh); the posterior is the product q(z|x) p(z|u) (normalised);
- GIN decoder: z padded to the number of units by an MLP of z, then `gin_blocks` blocks of a fixed permutation and
  two volume-preserving affine couplings (log-scales with zero mean), rates = softplus(output);
- Poisson observations; loss = Poisson NLL + KL(posterior || label prior), per bin.
Sampling draws z ~ p(z|u) independently in every bin of a trial at the requested angles, so samples carry the
angle tuning and the within-bin correlations of the units, but no temporal structure at all (no PSTH time course,
no correlations across bins): what the reference's i.i.d. treatment implies. Without an angle column
(`condition` none) the label is constant and the prior a learned Gaussian (a plain VAE of single bins).
Ours: a constant learning rate (the reference: cosine 1e-3 -> 1e-5 with 25 warm-up epochs over 500 epochs).
"""

from __future__ import annotations

import json
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
from nwb_ldns.baselines.lfads import kl_diagonal_gaussians
from nwb_ldns.baselines.trainer import BaselineSpec, TrainedBaseline, template_dataset
from nwb_ldns.errors import OptionError, SessionContentError

_COMMON: dict[str, Any] = {
    "seed": 0,
    "condition": "auto",  # trial column of angles (radians): "auto" = reach_angle if present, else none
    "z_dim": 4,
    "hidden": 60,
    "gin_blocks": 2,
    "lr": 1e-3,
    "batch_size": 32,  # trials per batch: 32 x 140 MC_Maze bins ~ the reference's 4096 bins
    "grad_clip": 1000.0,
    "epochs": 500,
    "checkpoint_every": 25,
}

PRESETS: dict[str, dict[str, Any]] = {
    "pivae": dict(_COMMON),  # ldns-reference.md section 8
    "tiny": {**_COMMON, "hidden": 32, "lr": 1e-2, "batch_size": 16, "epochs": 20, "checkpoint_every": 5},
}


def check_config(config: dict[str, Any]) -> None:
    for key in ("z_dim", "hidden", "gin_blocks"):
        if config[key] < 1:
            raise OptionError(f"--set {key}={config[key]} must be a positive integer")


def _mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """y2 = x2 * exp(s(x1)) + t(x1) with the log-scales s centred (zero sum: volume preserving, GIN)."""

    def __init__(self, n_in: int, n_out: int, hidden: int) -> None:
        super().__init__()
        self.n_out = n_out
        self.net = _mlp([n_in, hidden, hidden, 2 * n_out], nn.ReLU)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        st = self.net(x1)
        s = 0.1 * torch.tanh(st[..., :self.n_out])
        return x2 * torch.exp(s - s.mean(dim=-1, keepdim=True)) + st[..., self.n_out:]


class GINDecoder(nn.Module):
    """z [.., d] -> rates [.., N]: pad z to N dimensions with an MLP of z, then volume-preserving couplings."""

    def __init__(self, z_dim: int, n_units: int, blocks: int, seed: int = 0) -> None:
        super().__init__()
        if n_units < max(2, z_dim):
            raise SessionContentError(f"pi-VAE needs at least max(2, z_dim={z_dim}) units, the session has "
                                      f"{n_units}; use --set z_dim=K with a smaller K")
        hidden = max(30, n_units // 4)
        self.pad = _mlp([z_dim, hidden, hidden, n_units - z_dim], nn.ReLU) if n_units > z_dim else None
        half = n_units // 2
        self.half = half
        self.couplings = nn.ModuleList()
        generator = torch.Generator().manual_seed(seed)
        for b in range(blocks):
            self.register_buffer(f"perm{b}", torch.randperm(n_units, generator=generator))
            self.couplings.append(AffineCoupling(half, n_units - half, hidden))
            self.couplings.append(AffineCoupling(n_units - half, half, hidden))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, self.pad(z)], dim=-1) if self.pad is not None else z
        for b in range(len(self.couplings) // 2):
            x = x[..., getattr(self, f"perm{b}")]
            x1, x2 = x[..., :self.half], x[..., self.half:]
            x2 = self.couplings[2 * b](x1, x2)
            x1 = self.couplings[2 * b + 1](x2, x1)
            x = torch.cat([x1, x2], dim=-1)
        return F.softplus(x)


class PiVAENet(nn.Module):
    def __init__(self, n_units: int, label_dim: int, z_dim: int, hidden: int, blocks: int, seed: int = 0) -> None:
        super().__init__()
        self.prior_mean = _mlp([label_dim, hidden, hidden, z_dim], nn.Tanh)
        self.prior_logvar = _mlp([label_dim, hidden, hidden, z_dim], nn.Tanh)
        self.encoder = _mlp([n_units, hidden, hidden, hidden, 2 * z_dim], nn.Tanh)
        self.decoder = GINDecoder(z_dim, n_units, blocks, seed)
        self.z_dim = z_dim

    def label_prior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prior_mean(u), torch.exp(self.prior_logvar(u).clamp(-20.0, 20.0))

    def posterior(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
        """(posterior mean, var, prior mean, var): q(z|x,u) proportional to q(z|x) p(z|u)."""
        h = self.encoder(x)
        enc_mean, enc_var = h[..., :self.z_dim], torch.exp(h[..., self.z_dim:].clamp(-20.0, 20.0))
        prior_mean, prior_var = self.label_prior(u)
        var = enc_var * prior_var / (enc_var + prior_var)
        mean = (enc_mean * prior_var + prior_mean * enc_var) / (enc_var + prior_var)
        return mean, var, prior_mean, prior_var


def labels(trials: xr.Dataset, condition: str) -> torch.Tensor:
    """u [trial, d]: [cos, sin] of the angle column, or a constant [1] without one."""
    if condition == "none":
        return torch.ones(trials.sizes["trial"], 1)
    angles = np.asarray(trials[f"trial_{condition}"].values, dtype=np.float64)
    return torch.from_numpy(np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32))


def resolve_condition(session: xr.Dataset, condition: str | None) -> str:
    """The angle column the label comes from ("auto": reach_angle if present), checked; "none": no label."""
    condition = (condition or "auto").removeprefix("trial_")
    if condition == "auto":
        condition = "reach_angle" if "trial_reach_angle" in session else "none"
    if condition == "none":
        return condition
    if f"trial_{condition}" not in session:
        columns = sorted(str(v)[len("trial_"):] for v in session.data_vars if str(v).startswith("trial_"))
        raise OptionError(f"no trial column {condition!r} of angles for the pi-VAE label (columns: {columns}); "
                          "pass --condition COLUMN (radians) or --condition none")
    try:
        values = np.asarray(session[f"trial_{condition}"].values[session["split"].values == "train"], dtype=float)
    except (TypeError, ValueError):
        raise OptionError(f"trial column {condition!r} is not numeric; the pi-VAE label is an angle in radians: "
                          "pass another --condition or none") from None
    if not np.isfinite(values).all():
        raise SessionContentError(f"trial column {condition!r} has NaN/inf for some training trials; drop those "
                                  "trials or pass --condition none")
    return condition


def build(config: dict[str, Any], data: dict[str, Any]) -> PiVAENet:
    return PiVAENet(int(data["n_units"]), 1 if config["condition"] == "none" else 2, config["z_dim"],
                    config["hidden"], config["gin_blocks"], seed=int(config["seed"]))


def tensors(trials: xr.Dataset, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    counts = np.nan_to_num(np.asarray(trials["counts"].values, dtype=np.float32))
    return {"counts": torch.from_numpy(counts), "mask": torch.from_numpy(trials["mask"].values.astype(bool)),
            "label": labels(trials, config["condition"])}


def loss(module: PiVAENet, batch: dict[str, torch.Tensor], config: dict[str, Any], step: int, steps_per_epoch: int,
         training: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Poisson NLL + KL(q(z|x,u) || p(z|u)), averaged over the valid bins of the batch (bins are i.i.d.)."""
    mask = batch["mask"]
    x = batch["counts"][mask]  # [bins, N]
    u = batch["label"].unsqueeze(1).expand(-1, mask.shape[1], -1)[mask]
    mean, var, prior_mean, prior_var = module.posterior(x, u)
    z = mean + var.sqrt() * torch.randn_like(mean) if training else mean
    rates = module.decoder(z)
    nll = F.poisson_nll_loss(rates, x, log_input=False, full=False, eps=1e-7, reduction="none").sum(-1).mean()
    kl = kl_diagonal_gaussians(mean, var, prior_mean, prior_var).sum(-1).mean()
    return nll + kl, {"nll": float(nll.detach()), "kl": float(kl.detach())}


def describe_labels(train: xr.Dataset, config: dict[str, Any]) -> dict[str, Any]:
    """The training trials' angles (sampling at 'training' angles copies them)."""
    if config["condition"] == "none":
        return {"train_angles": None}
    return {"train_angles": [float(a) for a in np.asarray(train[f"trial_{config['condition']}"].values, float)]}


SPEC = BaselineSpec(name="pivae", model_name="pi-VAE", presets=PRESETS, default_preset="pivae",
                    check_config=check_config, build=build, loss=loss, tensors=tensors,
                    describe=describe_labels)


@dataclass
class PiVAE(TrainedBaseline):
    """A trained pi-VAE baseline (network PiVAENet)."""

    SPEC: ClassVar[BaselineSpec] = SPEC

    @classmethod
    def fit(cls, session: xr.Dataset, model_dir: str | Path, *, condition: str | None = None,
            overrides: dict[str, Any] | None = None, resume: bool = False, **options) -> "PiVAE":
        """Train on the session's train split into model_dir. condition: the angle column (default: the config's,
        "auto" = reach_angle if present); other options as nwb_ldns.baselines.trainer.fit_baseline_dir."""
        overrides = dict(overrides or {})
        if condition is not None or not resume:
            overrides["condition"] = resolve_condition(session, condition or overrides.get("condition"))
        return super().fit(session, model_dir, overrides=overrides, resume=resume, **options)

    def describe(self) -> dict[str, Any]:
        return {"baseline": "pivae", **self.config, "n_train_trials": self.n_train, "n_bins": self.data["n_bins"],
                "n_units": self.data["n_units"], "observation": "rates = softplus(GIN(z)), Poisson counts",
                "time_bins": "i.i.d. given the label"}

    def angles(self, n: int, how: str | float, templates: np.ndarray) -> np.ndarray | None:
        """The label angles of n samples: 'training' (those of the template trials), 'uniform'
        (linspace(0, 2 pi, n) as the reference), or one angle in radians for all."""
        if self.config["condition"] == "none":
            if how != "training":
                raise OptionError("this pi-VAE has no angle label (trained with --condition none); drop --angle")
            return None
        if how == "training":
            return np.asarray(self.data["train_angles"])[templates]
        if how == "uniform":
            return np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        try:
            angle = float(how)
        except (TypeError, ValueError):
            raise OptionError(f"--angle {how!r} is not 'training', 'uniform' or an angle in radians") from None
        if not math.isfinite(angle):
            raise OptionError(f"--angle must be a finite angle in radians, got {how!r}")
        return np.full(n, angle)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, angle: str | float = "training") -> xr.Dataset:
        """n trials, each with the length of a random training trial; in every bin z ~ p(z|u) independently."""
        n = check_n(n)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(seed))
        templates = rng.integers(0, self.n_train, size=n)
        angles = self.angles(n, angle, templates)
        n_bins = int(self.data["n_bins"])
        lengths = np.asarray(self.data["train_lengths"])[templates]
        mask = np.arange(n_bins)[None, :] < lengths[:, None]
        u = torch.ones(n, 1) if angles is None else torch.from_numpy(
            np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32))
        self.net.eval()
        rates, latents = [], []
        for part in u.split(256):
            mean, var = self.net.label_prior(part)
            z = mean[:, None] + var.sqrt()[:, None] * torch.randn(len(part), n_bins, mean.shape[1],
                                                                  generator=generator)
            rates.append(self.net.decoder(z).numpy())
            latents.append(z.numpy())
        rates = np.concatenate(rates) * mask[:, :, None]
        counts = rng.poisson(rates.astype(np.float64)).astype(np.float32)
        ds = generated_dataset(template_dataset(self.data), counts, rates, mask, model_name="pi-VAE",
                               config=self.describe(), parameters=self.parameters(), seed=seed,
                               latents=np.concatenate(latents) * mask[:, :, None])
        if angles is not None:
            variable = f"trial_{self.config['condition']}"
            ds[variable] = ("trial", angles.astype(np.float64))
            ds.attrs["conditioning"] = json.dumps({"condition": variable, "angle": str(angle)})
        return ds
