"""Stage 3: train the S4 denoiser on standardised latents (ldns-reference.md §3.2).

DDPM epsilon objective (t ~ U{0..T-1}, eps ~ N(0, I)), MSE or SmoothL1(beta); with a length mask the loss is
multiplied by the mask and averaged over all entries (the reference's human scale). AdamW, grad-norm clip,
cosine LR with warm-up per batch, EMA updated after every optimiser step; the EMA weights are what is kept.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from nwb_ldns.models import EMA, DDPMSchedule
from nwb_ldns.training.autoencoder import EARLY_STOP_REL_TOL
from nwb_ldns.training.common import Run, batches_per_epoch, check_finite_loss, generator_for, shuffled_batches
from nwb_ldns.training.distributed import SINGLE, Ranks
from nwb_ldns.training.schedule import WarmupCosine
from nwb_ldns.training.state import count_lines, save_checkpoint
from nwb_ldns.training.steps import denoiser_step, denoising_loss, micro_batch_trials

VALIDATION_DRAWS = 8  # (t, eps) draws per validation trial; fixed for the whole run so losses are comparable


class DenoiserValidation:
    """Denoising loss of the EMA weights on held-out latents, with the same (t, eps) draws every time.

    Why: on a few hundred trials the denoiser can fit its training latents past the point where it generalises
    (our early-stopping option; the reference trains for a fixed number of epochs).
    """

    def __init__(self, schedule: DDPMSchedule, latents: torch.Tensor, extra: torch.Tensor | None,
                 cond: torch.Tensor | None, cfg: dict[str, Any], seed: int, device: torch.device,
                 masked: bool = True, ranks: Ranks = SINGLE) -> None:
        self.masked = masked and extra is not None
        self.ranks = ranks
        gen = torch.Generator().manual_seed(seed)
        reps = VALIDATION_DRAWS
        self.x0 = latents.repeat(reps, 1, 1).to(device)
        self.t = torch.randint(0, schedule.num_steps, (self.x0.shape[0],), generator=gen).to(device)
        self.eps = torch.randn(self.x0.shape, generator=gen).to(device)
        self.x_t = schedule.add_noise(self.x0, self.eps, self.t)
        self.extra = extra.repeat(reps, 1, 1).to(device) if extra is not None else None
        self.cond = cond.repeat(reps, 1).to(device) if cond is not None else None
        if self.extra is not None:
            self.x_t = torch.cat([self.x_t, self.extra], dim=-1)
        self.cfg = cfg

    @torch.no_grad()
    def loss(self, model: torch.nn.Module, shadow: dict[str, torch.Tensor], batch: int = 256) -> float:
        evaluator = copy.deepcopy(model)
        evaluator.load_state_dict(shadow)
        evaluator.eval()
        total = 0.0
        ranks = self.ranks  # each rank scores every world-th batch; the sums are added over ranks
        for start in range(ranks.rank * batch, self.x0.shape[0], batch * ranks.world):
            part = slice(start, start + batch)
            eps_hat = evaluator(self.x_t[part], self.t[part], self.cond[part] if self.cond is not None else None)
            weight = self.extra[part][..., :1] if self.masked else None
            total += float(denoising_loss(eps_hat.float(), self.eps[part], self.cfg["loss"], self.cfg["smoothl1_beta"],
                                          weight)) * (eps_hat.shape[0])
        if ranks.active:
            total = float(ranks.total(torch.tensor(total, dtype=torch.float64)))
        return total / self.x0.shape[0]

STAGE = "diffusion"


def train_denoiser(model: torch.nn.Module, latents: torch.Tensor, extra: torch.Tensor | None,
                   cond: torch.Tensor | None, cfg: dict[str, Any], seed: int, run: Run,
                   resume: dict[str, Any] | None = None, val: dict[str, torch.Tensor | None] | None = None,
                   masked: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train on latents [N, L, K] (+ extra [N, L, E], cond [N, D]); return (EMA state dict, summary).

    masked: the first extra channel is the length mask, also the loss weight (False: extra holds only
    condition channels, e.g. velocity traces, and every bin counts).

    val ({"latents", "extra", "cond"} of held-out trials) with cfg val_every > 0: validation denoising loss every
    val_every epochs; with patience > 0 training stops after that many validations without improvement and the
    best validation EMA weights are returned.
    """
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
    best: dict[str, Any] = {"val_loss": math.inf, "epoch": 0, "weights": None, "stale": 0, "stopped": False}
    validation = None
    if val is not None and cfg.get("val_every") and val.get("latents") is not None and len(val["latents"]):
        validation = DenoiserValidation(schedule, val["latents"], val.get("extra"), val.get("cond"), cfg, seed + 7,
                                        run.device, masked=masked, ranks=run.ranks)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        ema.load_state_dict(resume["ema"])
        shuffle_gen.set_state(resume["rng"]["shuffle"])
        noise_gen.set_state(resume["rng"]["noise"])
        start_epoch = int(resume["epoch"])
        best = resume.get("best", best)
        run.say(f"resuming the denoiser at epoch {start_epoch}/{cfg['epochs']}")

    latents = latents.to(run.device)
    extra = extra.to(run.device) if extra is not None else None
    cond = cond.to(run.device) if cond is not None else None
    micro = micro_batch_trials(model, latents.shape[1], run.device)
    ranks, step_model = run.ranks, run.ranks.wrap(model, run.device)
    bar = run.bar(total=nb * cfg["epochs"], initial=nb * start_epoch, desc="diffusion")
    for epoch in range(start_epoch, cfg["epochs"]):
        if best.get("stopped"):
            break
        total, seen = 0.0, 0
        for index in shuffled_batches(n, cfg["batch_size"], shuffle_gen):
            index = index.to(run.device)
            rows = ranks.rows(len(index), run.device) if ranks.active else None
            mine = index if rows is None else index[rows] if len(rows) else index[:1]
            loss = ranks.total(denoiser_step(
                step_model, optimizer, schedule, latents[mine], extra[mine] if extra is not None else None,
                cond[mine] if cond is not None else None, cfg, noise_gen, bf16=run.bf16, micro=micro, masked=masked,
                batch=len(index), rows=rows, ranks=ranks))
            scheduler.step()
            check_finite_loss(loss.item(), STAGE, scheduler.step_count, cfg["lr"])
            ema.update(model)
            total += loss.item() * len(index)
            seen += len(index)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        done = epoch + 1
        run.log({"stage": STAGE, "epoch": done, "step": scheduler.step_count, "train_loss": total / seen,
                 "lr": optimizer.param_groups[0]["lr"], "ema_decay": ema.decay(ema.optimization_step)})
        if validation is not None and (done % cfg["val_every"] == 0 or done == cfg["epochs"]):
            val_loss = validation.loss(model, ema.shadow)
            check_finite_loss(val_loss, STAGE, scheduler.step_count, cfg["lr"], "validation loss")
            improved = val_loss < best["val_loss"]
            stale = 0 if val_loss < best["val_loss"] - EARLY_STOP_REL_TOL * abs(best["val_loss"]) else best["stale"] + 1
            if improved:
                best = {"val_loss": val_loss, "epoch": done,
                        "weights": {k: v.detach().cpu().clone() for k, v in ema.shadow.items()}}
            best["stale"] = stale
            best["stopped"] = bool(cfg.get("patience")) and stale >= cfg["patience"]
            run.log({"stage": STAGE, "epoch": done, "val_denoising_loss": val_loss, "best": improved})
            if best["stopped"]:
                run.log({"stage": STAGE, "epoch": done, "event": "early_stop", "best_epoch": best["epoch"]})
                bar.total = bar.n
                bar.refresh()
        if run.writes and (done % cfg["checkpoint_every"] == 0 or done == cfg["epochs"] or best.get("stopped")):
            save_checkpoint(run.checkpoint_dir, f"{STAGE}-epoch{done:05d}", {
                "stage": STAGE, "epoch": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "ema": ema.state_dict(), "best": copy.copy(best),
                "rng": {"shuffle": shuffle_gen.get_state(), "noise": noise_gen.get_state()},
                "log_lines": count_lines(run.log_path),
            })
        run.epoch_done(STAGE, done)
    bar.close()
    summary = {"steps": scheduler.step_count, "final_lr_factor": scheduler.factor(),
               "final_ema_decay": ema.decay(ema.optimization_step)}
    if validation is not None:
        summary.update({"best_epoch": best["epoch"], "best_val_denoising_loss": best["val_loss"],
                        "early_stopped": bool(best["stopped"])})
    if validation is not None and cfg.get("patience") and best["weights"] is not None:
        return best["weights"], summary
    return {k: v.detach().cpu().clone() for k, v in ema.shadow.items()}, summary
