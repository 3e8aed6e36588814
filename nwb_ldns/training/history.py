"""The spike-history stage of `fit --spike-history` (reference 3.7): a per-neuron Poisson GLM on the autoencoder's
rates of the training trials, fitted after the autoencoder and written as spike_history.safetensors.

Why after the autoencoder and before the denoiser: the GLM needs only the real counts and the autoencoder's rates,
and the denoiser's weight file is what marks a model directory complete, so a run killed here resumes by fitting
the (seeded, deterministic) GLM again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from nwb_ldns.models.spike_history import HistoryConfig, SpikeHistoryGLM, fit_spike_history

HISTORY_FILE = "spike_history.safetensors"
STAGE = "spike_history"


def history_config(section: Mapping[str, Any], seed: int) -> HistoryConfig:
    """The GLM settings of a config's `spike_history` section."""
    return HistoryConfig(history=int(section["history"]), max_spikes=int(section["max_spikes"]),
                         epochs=int(section["epochs"]), batch_size=int(section["batch_size"]), lr=float(section["lr"]),
                         weight_decay=float(section["weight_decay"]), start=section["start"], seed=seed)


@torch.no_grad()
def autoencoder_rates(autoencoder: torch.nn.Module, counts: torch.Tensor, batch_size: int,
                      device: torch.device) -> torch.Tensor:
    """Rates [N, L, U] (CPU, float32) the autoencoder assigns to counts, without coordinated dropout."""
    autoencoder.eval()
    out = [autoencoder(counts[i:i + batch_size].to(device))[0].float().cpu()
           for i in range(0, counts.shape[0], batch_size)]
    return torch.cat(out)


def fit_history_stage(autoencoder: torch.nn.Module, train: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                      seed: int, run, out_dir: Path) -> SpikeHistoryGLM:
    """Fit the GLM on the train trials, log it, write its weights into out_dir; return it."""
    from nwb_ldns.model_dir import state_bytes, write_bytes
    from nwb_ldns.training.common import check_finite_loss

    settings = history_config(config["spike_history"], seed)
    rates = autoencoder_rates(autoencoder, train["counts"], config["autoencoder"]["batch_size"], run.device)
    bar = run.bar(total=settings.epochs, initial=0, desc="spike history")

    def on_epoch(epoch: int, loss: float) -> None:
        check_finite_loss(loss, STAGE, epoch + 1, settings.lr)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    glm, losses = fit_spike_history(train["counts"].numpy(), rates.numpy(), settings,
                                    mask=train["mask"].numpy(), on_epoch=on_epoch)
    bar.close()
    run.log({"stage": STAGE, "event": "done", "epochs": settings.epochs, "first_loss": losses[0],
             "final_loss": losses[-1], "history_bins": settings.history, "max_spikes": settings.max_spikes,
             "start": settings.start})
    write_bytes(out_dir / HISTORY_FILE, state_bytes(glm))
    run.say(f"spike history: per-neuron Poisson GLM over {settings.history} bins, final loss {losses[-1]:.4f} "
            f"-> {out_dir / HISTORY_FILE}")
    return glm
