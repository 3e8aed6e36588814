"""The LDNS diffusion denoiser (ldns-reference.md §3.1): DiT-style adaLN-Zero blocks with bidirectional S4.

Why adaLN-Zero: the per-block modulation (from the timestep and optional condition embedding) is zero at
initialisation, so every block starts as the identity and the network starts as conv_out(conv_in(x)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GroupedLinear, modulated_instance_norm
from .batching import inference_chunks
from .s4 import S4

TIMESTEP_FEATURES = 256


def timestep_features(t: torch.Tensor, dim: int = TIMESTEP_FEATURES) -> torch.Tensor:
    """Sinusoidal features [cos(t f_i), sin(t f_i)] (cos first), f_i = exp(-ln(1e4) i / (dim/2)), of integer t [B]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class EmbeddingMLP(nn.Sequential):
    """Linear -> SiLU -> Linear, used for the timestep and the condition embeddings."""

    def __init__(self, in_features: int, width: int) -> None:
        super().__init__(nn.Linear(in_features, width), nn.SiLU(), nn.Linear(width, width))


class DenoiserBlock(nn.Module):
    """adaLN-Zero residual block: modulated norm -> bidirectional S4 -> GELU (gated), modulated norm -> MLP (gated)."""

    def __init__(self, hidden: int, emb_dim: int, d_state: int = 64, s4_mode: str = "diag") -> None:
        super().__init__()
        self.ada = nn.Linear(emb_dim, 6 * hidden)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.s4 = S4(hidden, d_state=d_state, bidirectional=True, mode=s4_mode)
        self.mlp_in = nn.Linear(hidden, 2 * hidden)
        self.mlp_out = nn.Linear(2 * hidden, hidden)

    def forward(self, h: torch.Tensor, emb_act: torch.Tensor) -> torch.Tensor:
        """h [B, L, C]; emb_act = GELU(embedding) [B, E] (computed once for all blocks)."""
        mod = self.ada(emb_act)[:, None, :]  # [B, 1, 6C]
        shift_tm, scale_tm, gate_tm, shift_cm, scale_cm, gate_cm = mod.chunk(6, dim=-1)
        y = self.s4(modulated_instance_norm(h, scale_tm, shift_tm))
        h = torch.addcmul(h, gate_tm, F.gelu(y))
        y = self.mlp_out(F.gelu(self.mlp_in(modulated_instance_norm(h, scale_cm, shift_cm))))
        return torch.addcmul(h, gate_cm, y)


class Denoiser(nn.Module):
    """epsilon-prediction network: x_t [B, L, channels + extra], t [B], cond [B, cond_dim] -> eps [B, L, channels].

    Extra input channels (length mask, velocity traces) are concatenated by the caller and their outputs
    dropped here. conv_in/conv_out are grouped (groups = C_in if hidden % C_in == 0 and hidden > C_in, else 1,
    with C_in = channels + extra), and out_scale multiplies conv_out's weight and bias at initialisation.
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 64,
        n_blocks: int = 4,
        extra_channels: int = 0,
        cond_dim: int = 0,
        d_state: int = 64,
        out_scale: float = 1.0,
        s4_mode: str = "diag",
    ) -> None:
        super().__init__()
        if channels < 1 or hidden < 4 or n_blocks < 0 or extra_channels < 0 or cond_dim < 0:
            raise ValueError(
                "Denoiser needs channels >= 1, hidden >= 4, n_blocks, extra_channels, cond_dim >= 0; got "
                f"channels={channels}, hidden={hidden}, n_blocks={n_blocks}, extra_channels={extra_channels}, "
                f"cond_dim={cond_dim}"
            )
        if hidden % 4:
            raise ValueError(f"hidden ({hidden}) must be a multiple of 4 (embedding width is hidden / 4)")
        self.channels, self.extra_channels, self.cond_dim, self.hidden = channels, extra_channels, cond_dim, hidden
        c_in = channels + extra_channels
        groups = c_in if hidden % c_in == 0 and hidden > c_in else 1
        emb_dim = hidden // 4
        self.conv_in = GroupedLinear(c_in, hidden, groups=groups)
        self.time_embed = EmbeddingMLP(TIMESTEP_FEATURES, emb_dim)
        self.cond_embed = EmbeddingMLP(cond_dim, emb_dim) if cond_dim else None
        self.blocks = nn.ModuleList(DenoiserBlock(hidden, emb_dim, d_state=d_state, s4_mode=s4_mode)
                                    for _ in range(n_blocks))
        self.conv_out = GroupedLinear(hidden, c_in, groups=groups)
        with torch.no_grad():
            self.conv_out.weight.mul_(out_scale)
            self.conv_out.bias.mul_(out_scale)

    def embed(self, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Timestep (+ condition) embedding [B, hidden/4]."""
        emb = self.time_embed(timestep_features(t))
        if self.cond_embed is not None:
            if cond is None:
                raise ValueError(f"this denoiser is conditional: pass cond of shape [batch, {self.cond_dim}]")
            if cond.dim() != 2 or cond.shape != (t.shape[0], self.cond_dim):
                raise ValueError(f"cond must have shape [{t.shape[0]}, {self.cond_dim}], got {tuple(cond.shape)}")
            emb = emb + self.cond_embed(cond.to(emb.dtype))
        elif cond is not None:
            raise ValueError("cond was given but this denoiser was built with cond_dim=0")
        return emb

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        c_in = self.channels + self.extra_channels
        if x_t.dim() != 3 or x_t.shape[-1] != c_in:
            raise ValueError(
                f"Denoiser expects x_t [batch, time, {c_in}] ({self.channels} latent + {self.extra_channels} extra "
                f"channels), got {tuple(x_t.shape)}"
            )
        t = torch.as_tensor(t, device=x_t.device)
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"t must be a scalar or have shape [{x_t.shape[0]}], got {tuple(t.shape)}")
        emb_act = F.gelu(self.embed(t, cond))
        chunk = x_t.shape[0]
        if not torch.is_grad_enabled():
            chunk = inference_chunks(*x_t.shape[:2], 2 * self.hidden, x_t.device)
        if chunk >= x_t.shape[0]:
            return self._trunk(x_t, emb_act)
        return torch.cat([self._trunk(x, e) for x, e in zip(x_t.split(chunk), emb_act.split(chunk))])

    def _trunk(self, x_t: torch.Tensor, emb_act: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x_t)
        for block in self.blocks:
            h = block(h, emb_act)
        if not self.extra_channels:
            return self.conv_out(h)
        weight = self.conv_out.dense_weight()[: self.channels]  # outputs of the extra channels are never needed
        return F.linear(h, weight, self.conv_out.bias[: self.channels])
