"""The LDNS S4 autoencoder (ldns-reference.md §2.2-2.3): spike counts [B, L, N] -> latents [B, L, K] -> rates.

Why this shape: the decoder is pointwise in time and additive over latents (grouped un-bottleneck), so all
temporal structure lives in the latents that the diffusion model later learns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GroupedLinear, PostScale, modulated_instance_norm
from .batching import inference_chunks
from .s4 import S4


class AutoEncoderBlock(nn.Module):
    """Residual S4 block with a learned, input-independent modulation.

    norm -> S4 -> GELU -> PostScale (residual), then norm -> MLP (residual).
    """

    def __init__(self, hidden: int, bidirectional: bool, d_state: int = 64, s4_mode: str = "diag") -> None:
        super().__init__()
        self.ada = nn.Parameter(torch.zeros(6 * hidden))  # shift/scale/gate x (time, channel); gates unused
        self.s4 = S4(hidden, d_state=d_state, bidirectional=bidirectional, mode=s4_mode)
        self.post_scale = PostScale(hidden)
        self.mlp_in = nn.Linear(hidden, 2 * hidden, bias=False)
        self.mlp_out = nn.Linear(2 * hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift_tm, scale_tm, _, shift_cm, scale_cm, _ = self.ada.chunk(6)
        y = self.s4(modulated_instance_norm(x, scale_tm, shift_tm))
        x = x + self.post_scale(F.gelu(y))
        y = F.gelu(self.mlp_in(modulated_instance_norm(x, scale_cm, shift_cm)))
        if torch.is_autocast_enabled(x.device.type):
            return x + self.mlp_out(y)  # keep the residual stream in float32
        rows = x.shape[0] * x.shape[1]
        out = torch.addmm(x.reshape(rows, -1), y.reshape(rows, -1), self.mlp_out.weight.t())  # residual in the GEMM
        return out.view_as(x)


class AutoEncoder(nn.Module):
    """Counts [B, L, n_units] -> (softplus rates [B, L, n_units], latents [B, L, latent]).

    encode: Linear(N->C), n_blocks S4 blocks, grouped bottleneck C->K (groups = K).
    decode: grouped un-bottleneck K->C (groups = K), GELU, Linear(C->N), softplus.
    """

    def __init__(
        self,
        n_units: int,
        hidden: int = 256,
        latent: int = 8,
        n_blocks: int = 4,
        bidirectional: bool = True,
        d_state: int = 64,
        s4_mode: str = "diag",
        offset_bins: int = 0,
    ) -> None:
        super().__init__()
        if n_units < 1 or hidden < 1 or latent < 1 or n_blocks < 0:
            raise ValueError(
                f"AutoEncoder needs n_units, hidden, latent >= 1 and n_blocks >= 0; "
                f"got n_units={n_units}, hidden={hidden}, latent={latent}, n_blocks={n_blocks}"
            )
        if hidden % latent:
            raise ValueError(f"hidden ({hidden}) must be a multiple of latent ({latent}) for the grouped bottleneck")
        self.n_units, self.hidden, self.latent = n_units, hidden, latent
        self.encoder_in = nn.Linear(n_units, hidden)
        self.blocks = nn.ModuleList(
            AutoEncoderBlock(hidden, bidirectional, d_state=d_state, s4_mode=s4_mode) for _ in range(n_blocks)
        )
        self.bottleneck = GroupedLinear(hidden, latent, groups=latent)
        self.unbottleneck = GroupedLinear(latent, hidden, groups=latent)
        self.decoder_out = nn.Linear(hidden, n_units)
        if offset_bins > 0:  # a fixed per-bin, per-unit log-rate offset (the smoothed train PSTH): see set_rate_offset
            self.register_buffer("rate_offset", torch.zeros(offset_bins, n_units))
        else:
            self.rate_offset = None

    @torch.no_grad()
    def set_rate_offset(self, mean_counts: torch.Tensor, floor: float = 1e-4) -> None:
        """Make decode(0 modulation) start from the train PSTH: offset = softplus^-1(PSTH) per bin and unit.

        Why: with few trials the latents otherwise spend their capacity (and the diffusion model its accuracy) on
        the trial-averaged time course, which a PSTH estimates directly; the latents then carry the trial-to-trial
        variability only (our option, not in the reference).
        """
        if self.rate_offset is None:
            raise ValueError("this autoencoder was built without a rate offset (offset_bins=0)")
        if tuple(mean_counts.shape) != tuple(self.rate_offset.shape):
            raise ValueError(f"PSTH of shape {tuple(mean_counts.shape)} for an offset of {tuple(self.rate_offset.shape)}")
        rate = mean_counts.to(self.rate_offset).clamp_min(floor)
        self.rate_offset.copy_(rate + torch.log(-torch.expm1(-rate)))  # inverse softplus, stable for small rates

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Counts (or dropout-scaled counts) [B, L, n_units] -> latents [B, L, latent]."""
        if x.dim() != 3 or x.shape[-1] != self.n_units:
            raise ValueError(f"AutoEncoder expects input [batch, time, {self.n_units}], got {tuple(x.shape)}")
        chunk = x.shape[0] if torch.is_grad_enabled() else inference_chunks(*x.shape[:2], 2 * self.hidden, x.device)
        if chunk < x.shape[0]:  # gradient-free: cache-sized chunks of trials (see layers.inference_chunks)
            return torch.cat([self._encode(part) for part in x.split(chunk)])
        return self._encode(x)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder_in(x)
        for block in self.blocks:
            h = block(h)
        return self.bottleneck(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, L, latent] -> Poisson rates [B, L, n_units] (softplus of the decoder output)."""
        if z.dim() != 3 or z.shape[-1] != self.latent:
            raise ValueError(f"decode expects latents [batch, time, {self.latent}], got {tuple(z.shape)}")
        out = self.decoder_out(F.gelu(self.unbottleneck(z)))
        if self.rate_offset is not None:
            if z.shape[1] > self.rate_offset.shape[0]:
                raise ValueError(f"this autoencoder's PSTH offset covers {self.rate_offset.shape[0]} bins; it cannot "
                                 f"decode {z.shape[1]} bins (sample at the training length)")
            out = out + self.rate_offset[: z.shape[1]]
        return F.softplus(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z
