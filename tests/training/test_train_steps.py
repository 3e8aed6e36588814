"""The training steps: micro-batch accumulation (CPU) gives the same update as the whole batch in one piece."""

from __future__ import annotations

import copy

import pytest
import torch

from nwb_ldns.config import resolve_config
from nwb_ldns.models import AutoEncoder, DDPMSchedule, Denoiser
from nwb_ldns.models.batching import inference_chunks
from nwb_ldns.training.steps import autoencoder_step, denoiser_step, micro_batch_trials


def _one_step(model: torch.nn.Module, step, micro: int | None, **kwargs) -> tuple[torch.nn.Module, float]:
    model = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    loss = step(model, opt, generator=torch.Generator().manual_seed(3), bf16=False, micro=micro, **kwargs)
    return model, float(loss)


def _assert_close(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=2e-6, rtol=1e-5, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("micro", [1, 2, 4])
def test_autoencoder_step_micro_batches_equal_one_piece(micro):
    torch.manual_seed(0)
    model = AutoEncoder(6, hidden=16, latent=4, n_blocks=1)
    counts = torch.poisson(torch.full((6, 10, 6), 0.8))
    mask = (torch.arange(10)[None, :] < torch.tensor([10, 10, 8, 6, 10, 7])[:, None]).float()[..., None]
    cfg = {**resolve_config("tiny")["autoencoder"], "l2_beta": 0.01, "td_beta": 0.2}
    whole, loss_whole = _one_step(model, autoencoder_step, None, counts=counts, mask=mask, cfg=cfg)
    parts, loss_parts = _one_step(model, autoencoder_step, micro, counts=counts, mask=mask, cfg=cfg)
    assert loss_parts == pytest.approx(loss_whole, rel=1e-5)
    _assert_close(whole, parts)
    assert not torch.equal(whole.encoder_in.weight, model.encoder_in.weight)  # the step did move the weights


@pytest.mark.parametrize("loss", ["mse", "smoothl1"])
def test_denoiser_step_micro_batches_equal_one_piece(loss):
    torch.manual_seed(1)
    model = Denoiser(3, hidden=16, n_blocks=2, extra_channels=1, cond_dim=2)
    x0 = torch.randn(7, 12, 3)
    extra = (torch.arange(12)[None, :] < torch.tensor([12, 9, 12, 5, 12, 12, 8])[:, None]).float()[..., None]
    cond = torch.randn(7, 2)
    cfg = {**resolve_config("tiny")["diffusion"], "loss": loss}
    schedule = DDPMSchedule(50)
    args = dict(schedule=schedule, x0=x0, extra=extra, cond=cond, cfg=cfg)
    whole, loss_whole = _one_step(model, denoiser_step, None, **args)
    parts, loss_parts = _one_step(model, denoiser_step, 3, **args)
    assert loss_parts == pytest.approx(loss_whole, rel=1e-5)
    _assert_close(whole, parts)


def test_micro_batches_on_cpu_only():
    model = Denoiser(8, hidden=64, n_blocks=1)
    assert micro_batch_trials(model, 256, torch.device("cpu")) == 64
    assert micro_batch_trials(model, 256, torch.device("cuda")) is None  # a GPU takes the batch in one piece
    assert inference_chunks(512, 256, 128, "cpu") < 512
    assert inference_chunks(512, 256, 128, torch.device("cuda")) == 512
