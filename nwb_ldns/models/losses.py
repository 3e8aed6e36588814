"""The autoencoder's training objective (ldns-reference.md §2.4): coordinated dropout, masked Poisson NLL,
latent L2 + temporal-difference penalty. Layout [B, L, channel]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def coordinated_dropout(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None, *, batch: int | None = None,
    rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each entry independently with probability p; returns (x * m / (1 - p), dropped) with m = U > p.

    `dropped` (same dtype as x, 1.0 where dropped) marks the entries the reconstruction loss scores. With `batch`
    and `rows`, x holds the given rows of a batch of `batch` trials and U is drawn for the whole batch, so a
    data-parallel rank draws exactly what one process would for those rows.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"coordinated dropout probability must be in [0, 1), got {p}")
    shape = x.shape if batch is None else (batch, *x.shape[1:])
    u = torch.rand(shape, generator=generator, device=generator.device if generator else x.device)
    if rows is not None:
        u = u[rows.to(u.device)]
    keep = (u.to(x.device) > p).to(x.dtype)
    return x * keep / (1.0 - p), 1.0 - keep


def masked_poisson_nll(
    rates: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Full Poisson NLL (Stirling term where counts > 1) times `weight`, averaged over ALL entries.

    Averaging over all entries (not the weighted count) is the reference's scale: ~ p x per-entry NLL.
    """
    if rates.shape != counts.shape:
        raise ValueError(f"rates {tuple(rates.shape)} and counts {tuple(counts.shape)} must have the same shape")
    nll = F.poisson_nll_loss(rates, counts, log_input=False, full=True, eps=1e-8, reduction="none")
    if weight is not None:
        nll = nll * weight
    return nll.mean()


def latent_penalty(z: torch.Tensor, l2_beta: float, td_beta: float, numel: int, lags: int = 5) -> torch.Tensor:
    """l2_beta * R(z) / numel with R(z) = sum z^2 + (td/l2) sum_{i=1..lags} 1/(1+i) sum_t (z_t - z_{t+i})^2.

    z is [B, L, K]; numel is the INPUT element count B * n_units * L (reference normalisation). Computed as
    l2_beta * sum z^2 / numel + td_beta * TD / numel, which equals the reference and also allows l2_beta = 0.
    """
    if z.dim() != 3:
        raise ValueError(f"latent_penalty expects z [batch, time, latent], got shape {tuple(z.shape)}")
    if numel <= 0 or lags < 0:
        raise ValueError(f"numel must be > 0 and lags >= 0, got numel={numel}, lags={lags}")
    l2 = z.pow(2).sum()
    td = z.new_zeros(())
    for i in range(1, min(lags, z.shape[1] - 1) + 1):
        td = td + (z[:, i:] - z[:, :-i]).pow(2).sum() / (1.0 + i)
    return (l2_beta * l2 + td_beta * td) / numel
