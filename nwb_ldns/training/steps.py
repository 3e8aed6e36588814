"""One optimiser step of each stage, with gradient accumulation over micro-batches on CPU.

Why: at LDNS sizes the networks are memory-bound on CPU; a batch-512 denoiser step accumulated over micro-batches
of ~64 trials runs ~3x faster than in one piece (nwb_ldns.models.batching, benchmarks/bench_models.py). Every loss
here is a mean over all entries, so each micro-batch's loss is weighted by its share of the batch and the summed
gradient equals the whole batch's; the random draws (dropout mask, timesteps, noise) are made for the whole batch
first, so the micro-batch size does not change what is drawn. On a GPU the batch goes in one piece.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nwb_ldns.models import DDPMSchedule, coordinated_dropout, latent_penalty, masked_poisson_nll, micro_batch_size
from nwb_ldns.training.common import autocast


def micro_batch_trials(model: torch.nn.Module, length: int, device: torch.device) -> int | None:
    """Trials per micro-batch for this model and trial length: None (whole batch) on a GPU."""
    return None if device.type != "cpu" else micro_batch_size(model, length)


def _parts(batch: int, micro: int | None) -> list[slice]:
    size = batch if micro is None else max(1, micro)
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


def autoencoder_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, counts: torch.Tensor,
                     mask: torch.Tensor, cfg: dict[str, Any], generator: torch.Generator, *, bf16: bool,
                     micro: int | None) -> torch.Tensor:
    """Coordinated dropout, masked Poisson NLL on dropped entries + latent penalty; clip; step. Returns the loss.

    counts [B, L, U] and mask [B, L, 1] on the model's device. The latent penalty is normalised by the whole
    batch's input element count (reference §2.4), so the micro-batch penalties add up to it unweighted.
    """
    batch = counts.shape[0]
    x_in, dropped = coordinated_dropout(counts, cfg["mask_prob"], generator=generator)
    weight = dropped * mask
    numel = counts.numel()
    optimizer.zero_grad(set_to_none=True)
    total = counts.new_zeros((), dtype=torch.float32)
    for part in _parts(batch, micro):
        with autocast(counts.device, bf16):
            rates, z = model(x_in[part])
        share = (part.stop - part.start) / batch
        loss = (masked_poisson_nll(rates.float(), counts[part], weight[part]) * share
                + latent_penalty(z.float(), cfg["l2_beta"], cfg["td_beta"], numel, lags=cfg["td_lags"]))
        loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
    optimizer.step()
    return total


def denoising_loss(eps_hat: torch.Tensor, eps: torch.Tensor, kind: str, beta: float,
                   weight: torch.Tensor | None) -> torch.Tensor:
    """Elementwise MSE or SmoothL1(beta), times the mask if any, averaged over all entries."""
    if kind == "mse":
        per = F.mse_loss(eps_hat, eps, reduction="none")
    else:
        per = F.smooth_l1_loss(eps_hat, eps, reduction="none", beta=beta)
    if weight is not None:
        per = per * weight
    return per.mean()


def denoiser_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: DDPMSchedule,
                  x0: torch.Tensor, extra: torch.Tensor | None, cond: torch.Tensor | None, cfg: dict[str, Any],
                  generator: torch.Generator, *, bf16: bool, micro: int | None, masked: bool = True) -> torch.Tensor:
    """DDPM epsilon objective at t ~ U{0..T-1}; clip; step (the caller updates LR and EMA). Returns the loss.

    x0 [B, L, K] standardised latents; extra [B, L, E] (with masked: the length-mask channel first, also the loss
    weight; then any condition channels) and cond [B, D] are optional, all on the model's device.
    """
    batch, device = x0.shape[0], x0.device
    t = torch.randint(0, schedule.num_steps, (batch,), generator=generator, device=device)
    eps = torch.randn(x0.shape, generator=generator, device=device)
    x_t = schedule.add_noise(x0, eps, t)
    weight = None
    if extra is not None:
        x_t = torch.cat([x_t, extra], dim=-1)
        weight = extra[..., :1] if masked else None
    optimizer.zero_grad(set_to_none=True)
    total = x0.new_zeros((), dtype=torch.float32)
    for part in _parts(batch, micro):
        with autocast(device, bf16):
            eps_hat = model(x_t[part], t[part], cond[part] if cond is not None else None)
        share = (part.stop - part.start) / batch
        loss = denoising_loss(eps_hat.float(), eps[part], cfg["loss"], cfg["smoothl1_beta"],
                              weight[part] if weight is not None else None) * share
        loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
    optimizer.step()
    return total
