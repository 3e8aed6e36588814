"""DDPM noise schedule (diffusers-0.3.0 semantics, ldns-reference.md §3.2-3.3) and the latent samplers.

Why own code: the reference pins diffusers 0.3.0 for three formulas; they are written out here so the
numbers (float32 linear betas, fixed_small variance clamped at 1e-20, no clipping) are explicit and tested.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import OptionError

SAMPLERS = ("ddpm", "ddim")
DEFAULT_DDIM_STEPS = 50


class DDPMSchedule:
    """Linear-beta DDPM schedule with epsilon prediction; constants in float32 as the reference computes them."""

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if not 0.0 < beta_start <= beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        self.num_steps, self.beta_start, self.beta_end = num_steps, beta_start, beta_end
        betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float32)
        alphas = (1.0 - betas).astype(np.float32)
        self.betas = torch.from_numpy(betas)
        self.alphas = torch.from_numpy(alphas)
        self.alphas_cumprod = torch.from_numpy(np.cumprod(alphas, axis=0))

    def _check_t(self, t: int) -> int:
        t = int(t)
        if not 0 <= t < self.num_steps:
            raise ValueError(f"timestep {t} outside [0, {self.num_steps - 1}]")
        return t

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, with t [B] (one timestep per sample) or a scalar."""
        t = torch.as_tensor(t, device=x0.device).long()
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise ValueError(f"timesteps must lie in [0, {self.num_steps - 1}]")
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
        abar = abar.reshape(abar.shape + (1,) * (x0.dim() - abar.dim()))
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * eps

    def step(
        self, eps_hat: torch.Tensor, t: int, x_t: torch.Tensor, generator: torch.Generator | None = None,
        clip_x0: float | None = None,
    ) -> torch.Tensor:
        """One ancestral step x_t -> x_{t-1} (§3.3): posterior mean from x0_hat + fixed_small noise.

        clip_x0: clamp x0_hat to [-clip_x0, clip_x0] (None: no clipping, the reference).
        """
        t = self._check_t(t)
        abar_t = float(self.alphas_cumprod[t])
        abar_prev = float(self.alphas_cumprod[t - 1]) if t > 0 else 1.0
        beta_t, alpha_t = float(self.betas[t]), float(self.alphas[t])
        x0_hat = (x_t - (1.0 - abar_t) ** 0.5 * eps_hat) / abar_t**0.5
        if clip_x0 is not None:
            x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        mean = (abar_prev**0.5 * beta_t / (1.0 - abar_t)) * x0_hat + (
            alpha_t**0.5 * (1.0 - abar_prev) / (1.0 - abar_t)
        ) * x_t
        if t == 0:
            return mean
        variance = max(beta_t * (1.0 - abar_prev) / (1.0 - abar_t), 1e-20)
        return mean + variance**0.5 * _randn_like(x_t, generator)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """'Trailing' DDIM timesteps: round(T - i T/steps) - 1 for i < steps (starts at T-1, ends near 0)."""
        if not 1 <= steps <= self.num_steps:
            raise OptionError(f"DDIM steps must be in [1, {self.num_steps}], got {steps}; pick e.g. --steps 50")
        ts = np.round(np.arange(self.num_steps, 0, -self.num_steps / steps)).astype(np.int64) - 1
        return [int(v) for v in ts[:steps]]

    def ddim_step(self, eps_hat: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor,
                  clip_x0: float | None = None) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from t to t_prev (t_prev = -1 means abar = 1, the clean sample).

        clip_x0: clamp x0_hat and use the noise consistent with the clamped x0_hat (None: no clipping).
        """
        t = self._check_t(t)
        abar_t = float(self.alphas_cumprod[t])
        abar_prev = float(self.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        x0_hat = (x_t - (1.0 - abar_t) ** 0.5 * eps_hat) / abar_t**0.5
        if clip_x0 is not None:
            x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
            eps_hat = (x_t - abar_t**0.5 * x0_hat) / (1.0 - abar_t) ** 0.5
        return abar_prev**0.5 * x0_hat + (1.0 - abar_prev) ** 0.5 * eps_hat


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device (so a seed gives the same draw everywhere)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def sample_latents(
    denoiser: nn.Module,
    schedule: DDPMSchedule,
    shape: tuple[int, int, int],
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    extra: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    progress: bool = False,
    clip_x0: float | None = None,
) -> torch.Tensor:
    """Draw standardised latents [B, L, C] from pure noise.

    "ddpm": the reference ancestral sampler over all schedule.num_steps steps (steps must be None or equal).
    "ddim": deterministic DDIM (eta 0) with `steps` steps (default 50). `extra` [B, L, E] is concatenated to
    x_t at every step; `cond` [B, cond_dim] goes to the embedding. Runs in eval mode under inference_mode,
    so every S4 kernel is computed once per length; the module's train/eval state is restored afterwards.
    clip_x0: clamp each step's clean-latent estimate to [-clip_x0, clip_x0] (our option; None = reference).
    """
    if sampler not in SAMPLERS:
        raise OptionError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (batch, time, channels) with positive sizes, got {shape}")
    if sampler == "ddpm":
        if steps is not None and steps != schedule.num_steps:
            raise OptionError(
                f"the ddpm sampler always runs all {schedule.num_steps} steps (got steps={steps}); "
                "leave steps unset or use sampler 'ddim' for fewer steps"
            )
        timesteps = list(range(schedule.num_steps - 1, -1, -1))
    else:
        timesteps = schedule.ddim_timesteps(DEFAULT_DDIM_STEPS if steps is None else steps)
    device = next(denoiser.parameters()).device
    batch, length, _ = shape
    if extra is not None and (extra.dim() != 3 or extra.shape[:2] != (batch, length)):
        raise ValueError(f"extra must have shape [{batch}, {length}, E], got {tuple(extra.shape)}")

    was_training = denoiser.training
    denoiser.eval()
    try:
        with torch.inference_mode():
            noise_device = generator.device if generator is not None else device
            x = torch.randn(shape, generator=generator, device=noise_device).to(device)
            extra_d = extra.to(device=device, dtype=x.dtype) if extra is not None else None
            cond_d = cond.to(device) if cond is not None else None
            iterator = timesteps
            if progress:
                from nwb_ldns.progress import bar

                iterator = bar(timesteps, desc=f"sampling ({sampler})", unit="step")
            for i, t in enumerate(iterator):
                t_batch = torch.full((batch,), t, device=device, dtype=torch.long)
                inp = torch.cat([x, extra_d], dim=-1) if extra_d is not None else x
                eps = denoiser(inp, t_batch, cond_d)
                if sampler == "ddpm":
                    x = schedule.step(eps, t, x, generator, clip_x0=clip_x0)
                else:
                    t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                    x = schedule.ddim_step(eps, t, t_prev, x, clip_x0=clip_x0)
    finally:
        denoiser.train(was_training)
    return x.clone()
