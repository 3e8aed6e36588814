"""Chunked gradient-free passes equal one-piece passes; the micro-batch size rule (steps: tests/training)."""

from __future__ import annotations

import pytest
import torch

from nwb_ldns.models import AutoEncoder, Denoiser
from nwb_ldns.models import batching, micro_batch_size


def test_chunked_inference_equals_one_piece(monkeypatch):
    torch.manual_seed(0)
    den = Denoiser(3, hidden=16, n_blocks=2, extra_channels=1, cond_dim=2).eval()
    ae = AutoEncoder(5, hidden=16, latent=4, n_blocks=1).eval()
    with torch.no_grad():
        for block in den.blocks:
            block.ada.weight.normal_()
    x, t, c = torch.randn(7, 11, 4), torch.arange(7) * 100, torch.randn(7, 2)
    counts = torch.poisson(torch.ones(7, 11, 5))
    with torch.no_grad():
        whole_eps, whole_z = den(x, t, c), ae.encode(counts)
        monkeypatch.setattr(batching, "INFERENCE_CHUNK_ELEMENTS", 11 * 32 * 2)  # chunks of 2 trials
        assert batching.inference_chunks(7, 11, 32) == 2
        assert torch.allclose(den(x, t, c), whole_eps, atol=1e-6)
        assert torch.allclose(ae.encode(counts), whole_z, atol=1e-6)


def test_micro_batch_size_rule():
    assert micro_batch_size(AutoEncoder(128), 256) == 16
    assert micro_batch_size(Denoiser(8), 256) == 64
    assert micro_batch_size(Denoiser(32, hidden=384, extra_channels=1), 512) >= 1
    with pytest.raises(ValueError, match="hidden"):
        micro_batch_size(torch.nn.Linear(2, 2), 10)
