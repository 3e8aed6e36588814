"""One optimiser step of each stage, with gradient accumulation over micro-batches on CPU.

Why: at LDNS sizes the networks are memory-bound on CPU; a batch-512 denoiser step accumulated over micro-batches
of ~64 trials runs ~3x faster than in one piece (nwb_ldns.models.batching, benchmarks/bench_models.py). Every loss
here is a mean over all entries, so each micro-batch's loss is weighted by its share of the batch and the summed
gradient equals the whole batch's; the random draws (dropout mask, timesteps, noise) are made for the whole batch
first, so the micro-batch size does not change what is drawn. On a GPU the batch goes in one piece.

Data-parallel (nwb_ldns.training.distributed): a rank passes its rows of the global batch (`rows`, `batch` = global
size); the draws are still made for the whole global batch and each loss share is relative to it, times the world
size because DDP averages the ranks' gradients. A rank with no rows in a short last batch runs one row at weight 0
(DDP needs every rank in each all-reduce). The returned loss is this rank's share: `Ranks.total` sums it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nwb_ldns.models import DDPMSchedule, coordinated_dropout, latent_penalty, masked_poisson_nll, micro_batch_size
from nwb_ldns.training.common import autocast
from nwb_ldns.training.distributed import SINGLE, Ranks, no_sync


def micro_batch_trials(model: torch.nn.Module, length: int, device: torch.device) -> int | None:
    """Trials per micro-batch for this model and trial length: None (whole batch) on a GPU."""
    return None if device.type != "cpu" else micro_batch_size(model, length)


def _parts(batch: int, micro: int | None) -> list[slice]:
    size = batch if micro is None else max(1, micro)
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


def _local_rows(rows: torch.Tensor | None) -> tuple[torch.Tensor | None, float]:
    """(rows to draw for, weight of this rank's loss): an empty shard computes one row at weight 0."""
    if rows is not None and len(rows) == 0:
        return torch.zeros(1, dtype=torch.long), 0.0
    return rows, 1.0


def autoencoder_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, counts: torch.Tensor,
                     mask: torch.Tensor, cfg: dict[str, Any], generator: torch.Generator, *, bf16: bool,
                     micro: int | None, batch: int | None = None, rows: torch.Tensor | None = None,
                     ranks: Ranks = SINGLE) -> torch.Tensor:
    """Coordinated dropout, masked Poisson NLL on dropped entries + latent penalty; clip; step. Returns the loss.

    counts [B, L, U] and mask [B, L, 1] on the model's device (a rank's rows of a global batch of `batch`). The
    latent penalty is normalised by the whole batch's input element count (reference §2.4), so the micro-batch
    penalties add up to it unweighted.
    """
    batch = counts.shape[0] if batch is None else batch
    rows, weight_scale = _local_rows(rows)
    x_in, dropped = coordinated_dropout(counts, cfg["mask_prob"], generator=generator, batch=batch, rows=rows)
    weight = dropped * mask
    numel = batch * counts[0].numel()
    optimizer.zero_grad(set_to_none=True)
    total = counts.new_zeros((), dtype=torch.float32)
    parts = _parts(counts.shape[0], micro)
    for number, part in enumerate(parts):
        with no_sync(model, last=number == len(parts) - 1):
            with autocast(counts.device, bf16):
                rates, z = model(x_in[part])
            share = (part.stop - part.start) / batch
            loss = (masked_poisson_nll(rates.float(), counts[part], weight[part]) * share
                    + latent_penalty(z.float(), cfg["l2_beta"], cfg["td_beta"], numel, lags=cfg["td_lags"])
                    ) * weight_scale
            (loss * ranks.world).backward()  # DDP averages the ranks' gradients
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
                  generator: torch.Generator, *, bf16: bool, micro: int | None, masked: bool = True,
                  batch: int | None = None, rows: torch.Tensor | None = None, ranks: Ranks = SINGLE) -> torch.Tensor:
    """DDPM epsilon objective at t ~ U{0..T-1}; clip; step (the caller updates LR and EMA). Returns the loss.

    x0 [B, L, K] standardised latents; extra [B, L, E] (with masked: the length-mask channel first, also the loss
    weight; then any condition channels) and cond [B, D] are optional, all on the model's device (a rank's rows of
    a global batch of `batch`).
    """
    device = x0.device
    batch = x0.shape[0] if batch is None else batch
    rows, weight_scale = _local_rows(rows)
    t = torch.randint(0, schedule.num_steps, (batch,), generator=generator, device=device)
    eps = torch.randn((batch, *x0.shape[1:]), generator=generator, device=device)
    if rows is not None:
        t, eps = t[rows.to(device)], eps[rows.to(device)]
    x_t = schedule.add_noise(x0, eps, t)
    weight = None
    if extra is not None:
        x_t = torch.cat([x_t, extra], dim=-1)
        weight = extra[..., :1] if masked else None
    optimizer.zero_grad(set_to_none=True)
    total = x0.new_zeros((), dtype=torch.float32)
    parts = _parts(x0.shape[0], micro)
    for number, part in enumerate(parts):
        with no_sync(model, last=number == len(parts) - 1):
            with autocast(device, bf16):
                eps_hat = model(x_t[part], t[part], cond[part] if cond is not None else None)
            share = (part.stop - part.start) / batch
            loss = denoising_loss(eps_hat.float(), eps[part], cfg["loss"], cfg["smoothl1_beta"],
                                  weight[part] if weight is not None else None) * share * weight_scale
            (loss * ranks.world).backward()  # DDP averages the ranks' gradients
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
    optimizer.step()
    return total
