"""Stage 2: the latent training set for diffusion (ldns-reference.md §2.5).

Encode the trials with the trained autoencoder (eval, unmasked input, fp32), standardise each latent channel with
train-set statistics (masked mean and biased std for variable-length trials, unbiased std otherwise), clip if the
preset says so, and -- for variable-length trials -- centre each trial's valid latents in the window with
replicate padding and a matching mask, which becomes an extra denoiser input channel (the human mechanism, §3.5).
"""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def encode(model: torch.nn.Module, counts: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Latents [N, L, K] (CPU, float32) of counts [N, L, U]."""
    model.eval()
    out = [model.encode(counts[i:i + batch_size].to(device)).float().cpu() for i in range(0, counts.shape[0], batch_size)]
    return torch.cat(out)


def latent_statistics(z: torch.Tensor, mask: torch.Tensor, variable_length: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) over trials and time; only valid bins count for variable-length trials."""
    if variable_length:
        w = mask[..., None].to(z.dtype)
        count = w.sum((0, 1)).clamp_min(1.0)
        mean = (z * w).sum((0, 1)) / count
        var = (z.pow(2) * w).sum((0, 1)) / count - mean.pow(2)
        std = var.clamp_min(0.0).sqrt()
    else:
        flat = z.reshape(-1, z.shape[-1])
        mean, std = flat.mean(0), flat.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a dead latent channel stays at zero
    return mean, std


def standardise(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, clip: float | None) -> torch.Tensor:
    out = (z - mean) / std
    return out.clamp(-clip, clip) if clip is not None else out


def unstandardise(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return z * std.to(z.device) + mean.to(z.device)


def centre_offsets(lengths: torch.Tensor, window: int) -> torch.Tensor:
    """Left padding that centres a trial of each length in the window: (window - length) // 2."""
    return (window - lengths) // 2


def centre(z: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each trial's valid prefix z[:len] to the window centre, replicate-padding both sides; also the mask."""
    n, window, _ = z.shape
    left = centre_offsets(lengths, window)[:, None]
    pos = torch.arange(window)[None, :]
    source = (pos - left).clamp(min=0)
    source = torch.minimum(source, (lengths[:, None] - 1))
    centred = torch.gather(z, 1, source[..., None].expand(-1, -1, z.shape[-1]))
    centred_mask = (pos >= left) & (pos < left + lengths[:, None])
    return centred, centred_mask


def length_mask_channel(lengths: torch.Tensor, window: int) -> torch.Tensor:
    """The centred validity mask [N, window, 1] (float) used as the denoiser's extra input channel."""
    left = centre_offsets(lengths, window)[:, None]
    pos = torch.arange(window)[None, :]
    return ((pos >= left) & (pos < left + lengths[:, None])).float()[..., None]


def prefix_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Per-trial lengths of a left-aligned validity mask [N, L]."""
    return mask.sum(1).long()


def length_histogram(lengths: torch.Tensor) -> dict[str, int]:
    values, counts = torch.unique(lengths, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def build_latent_set(z: torch.Tensor, mask: torch.Tensor, length_mask: bool, clip: float | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """(standardised latents [N, L, K], extra channel [N, L, 1] or None, latent_stats.json content)."""
    mean, std = latent_statistics(z, mask, variable_length=length_mask)
    zs = standardise(z, mean, std, clip)
    lengths = prefix_lengths(mask)
    extra = None
    if length_mask:
        zs, _ = centre(zs, lengths)
        extra = length_mask_channel(lengths, z.shape[1])
    stats = {
        "mean": mean.tolist(), "std": std.tolist(), "clip": clip, "centred": bool(length_mask),
        "window": int(z.shape[1]), "train_lengths": length_histogram(lengths),
        "standardised_mean": float(zs.mean()), "standardised_std": float(zs.std()),
        "standardised_abs_max": float(zs.abs().max()),
    }
    return zs, extra, stats


def apply_latent_set(z: torch.Tensor, mask: torch.Tensor, stats: dict[str, Any]
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Held-out latents transformed exactly as the training set was (train statistics, clip, centring)."""
    mean, std = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
    zs = standardise(z, mean, std, stats["clip"])
    if not stats["centred"]:
        return zs, None
    lengths = prefix_lengths(mask)
    zs, _ = centre(zs, lengths)
    return zs, length_mask_channel(lengths, z.shape[1])
