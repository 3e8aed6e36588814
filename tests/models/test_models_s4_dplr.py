"""The optional DPLR S4 kernel (mode="dplr"): exact against a plain recurrence, diagonal when P = 0, reference sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nwb_ldns.models import AutoEncoder, Denoiser, count_parameters
from nwb_ldns.models.s4 import S4, legs_nplr_init


def _recurrence_kernel(layer: S4, length: int) -> np.ndarray:
    """K[l] = Re(c Abar^l Bbar) with dense float64 matrices built from the layer's parameters (no Woodbury, no FFT)."""
    with torch.no_grad():
        dt = np.exp(layer.log_dt.double().numpy())
        lam = -np.exp(layer.log_A_real.double().numpy()) + 1j * layer.A_imag.double().numpy()
        cplx = lambda t: t.double().numpy()[..., 0] + 1j * t.double().numpy()[..., 1]  # noqa: E731
        b, p, c = cplx(layer.B), cplx(layer.P), cplx(layer.C)
    full = lambda v: np.concatenate([v, v.conj()], axis=-1)  # noqa: E731
    lam, b, p, c = full(lam), full(b), full(p), full(c)
    n = lam.shape[-1]
    out = np.zeros((c.shape[0], lam.shape[0], length))
    for h in range(lam.shape[0]):
        a = np.diag(lam[h]) - np.outer(p[h], p[h].conj())
        left = np.eye(n) - 0.5 * dt[h] * a
        a_bar = np.linalg.solve(left, np.eye(n) + 0.5 * dt[h] * a)
        state = np.linalg.solve(left, dt[h] * b[h])
        for step in range(length):
            out[:, h, step] = (c[:, h] @ state).real
            state = a_bar @ state
    return out


@pytest.mark.parametrize("length", [7, 32])
def test_dplr_kernel_equals_the_recurrence(length):
    torch.manual_seed(0)
    layer = S4(3, d_state=8, bidirectional=True, mode="dplr", dt_min=0.01, dt_max=0.5)
    with torch.no_grad():
        layer.P.add_(0.3 * torch.randn_like(layer.P))  # a trained-looking P, not just the LegS one
    got = layer.kernel(length).detach().double().numpy()
    expected = _recurrence_kernel(layer, length)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_dplr_without_low_rank_term_is_the_diagonal_kernel():
    torch.manual_seed(1)
    dplr = S4(4, d_state=16, bidirectional=True, mode="dplr")
    diag = S4(4, d_state=16, bidirectional=True, mode="diag")
    with torch.no_grad():
        for name, param in diag.named_parameters():
            param.copy_(getattr(dplr, name))
        dplr.P.zero_()
    torch.testing.assert_close(dplr.kernel(64), diag.kernel(64), atol=2e-5, rtol=1e-4)


def test_legs_nplr_init_reconstructs_hippo_legs():
    """V (diag(Lambda) - P P^H) V^H over both halves of each conjugate pair is the HiPPO-LegS matrix."""
    n = 8
    lam, _, p = legs_nplr_init(n)
    # recover V from the normal part and check the rank-1 term against LegS directly in the eigenbasis
    r = torch.sqrt(2.0 * torch.arange(n, dtype=torch.float64) + 1.0)
    legs = -torch.tril(r[:, None] * r[None, :], -1) - torch.diag(torch.arange(n, dtype=torch.float64) + 1.0)
    eig = torch.linalg.eigvals(legs)
    # eigenvalues of diag(Lambda) - P P^H (full state) equal those of LegS
    lam_f, p_f = torch.cat([lam, lam.conj()]), torch.cat([p, p.conj()])
    nplr = torch.diag(lam_f) - torch.outer(p_f, p_f.conj())
    got = torch.sort(torch.linalg.eigvals(nplr).real).values
    np.testing.assert_allclose(got.numpy(), torch.sort(eig.real).values.numpy(), atol=1e-8)


def test_dplr_parameter_counts_equal_the_reference():
    """ldns-reference.md section 6: AE Lorenz 1,453,192; denoiser Lorenz 179,432 (DPLR S4 with P)."""
    ae = AutoEncoder(128, hidden=256, latent=8, n_blocks=4, bidirectional=True, s4_mode="dplr")
    den = Denoiser(8, hidden=64, n_blocks=4, s4_mode="dplr")
    assert count_parameters(ae) == 1_453_192
    assert count_parameters(den) == 179_432


def test_dplr_layer_is_causal_trains_and_caches():
    torch.manual_seed(2)
    layer = S4(4, d_state=8, mode="dplr")
    x = torch.randn(2, 16, 4, requires_grad=True)
    y = layer(x)
    y[:, 5].sum().backward()
    # no input after t reaches y_t (up to FFT round-off)
    assert x.grad[:, 6:].abs().max() <= 1e-6 * x.grad[:, :6].abs().max()
    assert layer.P.grad is not None and layer.P.grad.abs().sum() > 0
    with torch.no_grad():
        cached = layer(x)
        again = layer(x)
    torch.testing.assert_close(cached, y.detach(), atol=1e-5, rtol=1e-5)
    assert torch.equal(cached, again)
