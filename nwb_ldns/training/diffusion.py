"""Stage 3: train the S4 denoiser on standardised latents (ldns-reference.md §3.2).

DDPM epsilon objective (t ~ U{0..T-1}, eps ~ N(0, I)), MSE or SmoothL1(beta); with a length mask the loss is
multiplied by the mask and averaged over all entries (the reference's human scale). AdamW, grad-norm clip,
cosine LR with warm-up per batch, EMA updated after every optimiser step; the EMA weights are what is kept.
"""

from __future__ import annotations

from typing import Any

import torch

from nwb_ldns.models import EMA, DDPMSchedule
from nwb_ldns.training.common import Run, batches_per_epoch, generator_for, shuffled_batches
from nwb_ldns.training.schedule import WarmupCosine
from nwb_ldns.training.state import count_lines, save_checkpoint
from nwb_ldns.training.steps import denoiser_step, micro_batch_trials

STAGE = "diffusion"


def train_denoiser(model: torch.nn.Module, latents: torch.Tensor, extra: torch.Tensor | None,
                   cond: torch.Tensor | None, cfg: dict[str, Any], seed: int, run: Run,
                   resume: dict[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train on latents [N, L, K] (+ extra [N, L, E], cond [N, D]); return (EMA state dict, summary)."""
    model.to(run.device).train()
    schedule = DDPMSchedule(cfg["num_steps"], cfg["beta_start"], cfg["beta_end"])
    n = latents.shape[0]
    nb = batches_per_epoch(n, cfg["batch_size"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = WarmupCosine(optimizer, cfg["lr"], nb, cfg["epochs"], cfg["warmup_epochs"], cfg["horizon_factor"])
    ema = EMA(model, power=cfg["ema_power"], min_value=cfg["ema_min_value"], max_value=cfg["ema_max_value"])
    shuffle_gen = generator_for(torch.device("cpu"), seed)
    noise_gen = generator_for(run.device, seed + 1)
    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        ema.load_state_dict(resume["ema"])
        shuffle_gen.set_state(resume["rng"]["shuffle"])
        noise_gen.set_state(resume["rng"]["noise"])
        start_epoch = int(resume["epoch"])
        run.say(f"resuming the denoiser at epoch {start_epoch}/{cfg['epochs']}")

    latents = latents.to(run.device)
    extra = extra.to(run.device) if extra is not None else None
    cond = cond.to(run.device) if cond is not None else None
    micro = micro_batch_trials(model, latents.shape[1], run.device)
    bar = run.bar(total=nb * cfg["epochs"], initial=nb * start_epoch, desc="diffusion")
    for epoch in range(start_epoch, cfg["epochs"]):
        total, seen = 0.0, 0
        for index in shuffled_batches(n, cfg["batch_size"], shuffle_gen):
            index = index.to(run.device)
            loss = denoiser_step(model, optimizer, schedule, latents[index],
                                 extra[index] if extra is not None else None,
                                 cond[index] if cond is not None else None, cfg, noise_gen, bf16=run.bf16, micro=micro)
            scheduler.step()
            ema.update(model)
            total += loss.item() * len(index)
            seen += len(index)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        done = epoch + 1
        run.log({"stage": STAGE, "epoch": done, "step": scheduler.step_count, "train_loss": total / seen,
                 "lr": optimizer.param_groups[0]["lr"], "ema_decay": ema.decay(ema.optimization_step)})
        if done % cfg["checkpoint_every"] == 0 or done == cfg["epochs"]:
            save_checkpoint(run.checkpoint_dir, f"{STAGE}-epoch{done:05d}", {
                "stage": STAGE, "epoch": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "ema": ema.state_dict(),
                "rng": {"shuffle": shuffle_gen.get_state(), "noise": noise_gen.get_state()},
                "log_lines": count_lines(run.log_path),
            })
        run.epoch_done(STAGE, done)
    bar.close()
    summary = {"steps": scheduler.step_count, "final_lr_factor": scheduler.factor(),
               "final_ema_decay": ema.decay(ema.optimization_step)}
    return {k: v.detach().cpu().clone() for k, v in ema.shadow.items()}, summary
