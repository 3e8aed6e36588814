"""How many trials to push through a network at once on CPU.

Why: the networks are memory-bound at LDNS sizes. Measured on 2 cores (benchmarks/bench_models.py and
docs/models.md): a gradient-free Lorenz denoiser pass over [512, 256, 8] takes ~4x longer in one piece than
in chunks of 16-32 trials, and a batch-512 denoiser training step ~3x longer than the same step accumulated
over micro-batches of 64, because large activations stream from DRAM and every large temporary is a fresh,
page-faulted allocation. Chunk sizes below target ~2 MiB (inference) and ~8 MiB (training) activations.
"""

from __future__ import annotations

import torch
from torch import nn

INFERENCE_CHUNK_ELEMENTS = 1 << 19
TRAINING_CHUNK_ELEMENTS = 1 << 21


def inference_chunks(batch: int, length: int, width: int, device: torch.device | str = "cpu") -> int:
    """Trials per chunk for gradient-free passes: about INFERENCE_CHUNK_ELEMENTS activations of `width` on CPU.

    On a GPU the whole batch goes at once: there, small chunks only add kernel launches.
    """
    if torch.device(device).type != "cpu":
        return max(1, batch)
    return max(1, min(batch, INFERENCE_CHUNK_ELEMENTS // max(1, length * width)))


def micro_batch_size(model: nn.Module, length: int) -> int:
    """Trials per micro-batch for a training step on CPU (accumulate gradients over micro-batches).

    Scale each micro-batch loss by (its trials / batch trials) so the summed gradient equals the full batch's
    (every LDNS loss is a mean over entries; the latent penalty's `numel` then is the micro-batch's).
    `model` is an AutoEncoder or Denoiser (anything with a `hidden` width); `length` is the number of bins.
    """
    hidden = getattr(model, "hidden", None)
    if not isinstance(hidden, int) or length < 1:
        raise ValueError("micro_batch_size needs a model with an integer `hidden` width and length >= 1")
    return max(1, TRAINING_CHUNK_ELEMENTS // (length * 2 * hidden))
