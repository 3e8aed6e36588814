"""Stage 1: train the S4 autoencoder (ldns-reference.md §2.4) with best-validation checkpoint selection.

Objective per batch (nwb_ldns.training.steps): coordinated dropout on the input, full Poisson NLL on the dropped entries (times the padding
mask for variable-length trials), plus the latent L2 / temporal-difference penalty; AdamW, grad-norm clip, cosine
LR with warm-up stepped per batch. Validation (unmasked input, eval mode) every `val_every` epochs and after the
last one; the weights of the best validation epoch are what the stage returns (the reference hard-coded epoch 140).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from nwb_ldns.models import masked_poisson_nll
from nwb_ldns.training.common import (Run, autocast, batches_per_epoch, check_finite_loss, generator_for,
                                     shuffled_batches)
from nwb_ldns.training.schedule import WarmupCosine
from nwb_ldns.training.state import count_lines, save_checkpoint
from nwb_ldns.training.steps import autoencoder_step, micro_batch_trials

STAGE = "autoencoder"
EARLY_STOP_REL_TOL = 2e-4  # an improvement smaller than this fraction of the best loss does not reset patience


@torch.no_grad()
def validation_losses(model: torch.nn.Module, counts: torch.Tensor, mask: torch.Tensor, batch_size: int,
                      run: Run, true_rates: torch.Tensor | None = None) -> dict[str, float]:
    """Mean full Poisson NLL per valid entry on unmasked input (and rate MSE when ground-truth rates exist)."""
    model.eval()
    nll_sum, n_valid, mse_sum = 0.0, 0.0, 0.0
    ranks = run.ranks  # each rank scores every world-th batch; the sums are added over ranks
    for start in range(ranks.rank * batch_size, counts.shape[0], batch_size * ranks.world):
        x = counts[start:start + batch_size].to(run.device)
        m = mask[start:start + batch_size].to(run.device)[..., None].float()
        with autocast(run.device, run.bf16):
            rates, _ = model(x)
        rates = rates.float()
        weight = m.expand_as(x)
        nll_sum += float(masked_poisson_nll(rates, x, weight)) * x.numel()
        n_valid += float(weight.sum())
        if true_rates is not None:
            r = true_rates[start:start + batch_size].to(run.device)
            mse_sum += float(((rates - r) ** 2 * weight).sum())
    model.train()
    if ranks.active:
        nll_sum, n_valid, mse_sum = ranks.total(torch.tensor([nll_sum, n_valid, mse_sum], dtype=torch.float64)).tolist()
    out = {"val_poisson_nll": nll_sum / max(n_valid, 1.0)}
    if true_rates is not None:
        out["val_rates_mse"] = mse_sum / max(n_valid, 1.0)
    return out


def train_autoencoder(model: torch.nn.Module, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor],
                      cfg: dict[str, Any], seed: int, run: Run, resume: dict[str, Any] | None = None
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train; return (best-validation state dict, summary). `train`/`val` hold counts [N,L,U], mask [N,L] (CPU)."""
    model.to(run.device).train()
    counts, mask = train["counts"], train["mask"]
    n = counts.shape[0]
    nb = batches_per_epoch(n, cfg["batch_size"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = WarmupCosine(optimizer, cfg["lr"], nb, cfg["epochs"], cfg["warmup_epochs"], cfg["horizon_factor"])
    shuffle_gen = generator_for(torch.device("cpu"), seed)
    noise_gen = generator_for(run.device, seed + 1)
    start_epoch, best = 0, {"val_poisson_nll": math.inf, "epoch": 0, "weights": None, "stale": 0, "stopped": False}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        shuffle_gen.set_state(resume["rng"]["shuffle"])
        noise_gen.set_state(resume["rng"]["noise"])
        start_epoch, best = int(resume["epoch"]), resume["best"]
        run.say(f"resuming the autoencoder at epoch {start_epoch}/{cfg['epochs']}")

    micro = micro_batch_trials(model, counts.shape[1], run.device)
    ranks, step_model = run.ranks, run.ranks.wrap(model, run.device)
    bar = run.bar(total=nb * cfg["epochs"], initial=nb * start_epoch, desc="autoencoder")
    for epoch in range(start_epoch, cfg["epochs"]):
        if best.get("stopped"):
            break
        total, seen = 0.0, 0
        for index in shuffled_batches(n, cfg["batch_size"], shuffle_gen):
            rows = ranks.rows(len(index)) if ranks.active else None
            mine = index if rows is None else index[rows] if len(rows) else index[:1]
            x = counts[mine].to(run.device, non_blocking=True)
            m = mask[mine].to(run.device)[..., None].to(x.dtype)
            loss = ranks.total(autoencoder_step(step_model, optimizer, x, m, cfg, noise_gen, bf16=run.bf16,
                                                micro=micro, batch=len(index), rows=rows, ranks=ranks))
            scheduler.step()
            check_finite_loss(loss.item(), STAGE, scheduler.step_count, cfg["lr"])
            total += loss.item() * len(index)
            seen += len(index)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}",
                            best_val=f"{best['val_poisson_nll']:.4f}" if best["weights"] is not None else "-")
        done = epoch + 1
        run.log({"stage": STAGE, "epoch": done, "step": scheduler.step_count, "train_loss": total / seen,
                 "lr": optimizer.param_groups[0]["lr"]})
        if done % cfg["val_every"] == 0 or done == cfg["epochs"]:
            losses = validation_losses(model, val["counts"], val["mask"], cfg["batch_size"], run, val.get("rates"))
            check_finite_loss(losses["val_poisson_nll"], STAGE, scheduler.step_count, cfg["lr"], "validation loss")
            improved = losses["val_poisson_nll"] < best["val_poisson_nll"] or best["weights"] is None
            significant = losses["val_poisson_nll"] < best["val_poisson_nll"] - EARLY_STOP_REL_TOL * abs(best["val_poisson_nll"])
            stale = 0 if significant else best.get("stale", 0) + 1
            if improved:
                best = {"val_poisson_nll": losses["val_poisson_nll"], "epoch": done,
                        "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
            best["stale"] = stale
            best["stopped"] = bool(cfg.get("patience")) and stale >= cfg["patience"]
            run.log({"stage": STAGE, "epoch": done, **losses, "best": improved})
            if best["stopped"]:
                run.log({"stage": STAGE, "epoch": done, "event": "early_stop", "best_epoch": best["epoch"]})
                bar.total = bar.n  # the bar ends here, not at the configured epochs
                bar.refresh()
        if run.writes and (done % cfg["checkpoint_every"] == 0 or done == cfg["epochs"] or best.get("stopped")):
            save_checkpoint(run.checkpoint_dir, f"{STAGE}-epoch{done:05d}", {
                "stage": STAGE, "epoch": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {"shuffle": shuffle_gen.get_state(), "noise": noise_gen.get_state()},
                "best": copy.copy(best), "log_lines": count_lines(run.log_path),
            })
        run.epoch_done(STAGE, done)
    bar.close()
    summary = {"best_epoch": best["epoch"], "best_val_poisson_nll": best["val_poisson_nll"],
               "steps": scheduler.step_count, "final_lr_factor": scheduler.factor(),
               "early_stopped": bool(best.get("stopped"))}
    return best["weights"], summary
