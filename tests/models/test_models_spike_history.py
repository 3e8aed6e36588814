"""Spike-history GLM (reference 3.7, mini-batch and zero-padded start ours): causal history, teacher forcing,
learning a refractory period that Poisson sampling violates, and the autoregressive sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nwb_ldns.testing import refractory_counts, short_isi_fraction

from nwb_ldns.models.spike_history import (HistoryConfig, SpikeHistoryGLM, _bin_weights, _loss, fit_spike_history,
                                           sample_with_history)


def test_history_drive_is_causal_with_the_last_weight_on_lag_one():
    torch.manual_seed(0)
    model = SpikeHistoryGLM(n_units=3, history=4)
    with torch.no_grad():
        model.history_weight.copy_(torch.randn(3, 4))
    counts = torch.poisson(torch.full((2, 9, 3), 0.7))
    drive = model.history_drive(counts)
    expected = torch.zeros_like(drive)
    for t in range(9):
        for k in range(1, 5):  # lag k uses weight index H - k
            if t - k >= 0:
                expected[:, t] += model.history_weight[:, 4 - k] * counts[:, t - k]
    assert torch.allclose(drive, expected, atol=1e-6)
    # a spike now never changes the drive of its own bin or of earlier bins
    bumped = counts.clone()
    bumped[:, 5] += 3
    assert torch.allclose(model.history_drive(bumped)[:, :6], drive[:, :6])


def test_initial_model_is_softplus_of_log_rate():
    model = SpikeHistoryGLM(n_units=2, history=3)
    rates = torch.tensor([[[0.01, 0.5], [2.0, 0.2]]])
    assert torch.allclose(model(torch.zeros_like(rates), torch.log(rates)), torch.log1p(rates), atol=1e-6)


def test_reference_start_drops_bins_without_a_full_history():
    weight = _bin_weights(torch.ones(2, 10, dtype=torch.bool), history=4, start="reference")
    assert weight[:, :4].sum() == 0 and weight[:, 4:].sum() == 12
    assert _bin_weights(torch.ones(2, 10, dtype=torch.bool), 4, "zero-padded").sum() == 20


def _refractory_session():
    return refractory_counts(240, 60, 4, base=0.25, depth=0.15, phase_per_trial=True)


def test_glm_learns_a_refractory_period_that_poisson_sampling_violates():
    counts, rates = _refractory_session()
    assert short_isi_fraction(counts, below=3) == 0.0  # the data: no ISI under 3 bins
    config = HistoryConfig(history=5, max_spikes=1, epochs=40, batch_size=60, lr=0.1, seed=1)
    model, losses = fit_spike_history(counts, rates, config)
    assert losses[-1] < 0.9 * losses[0]
    assert (model.history_weight[:, -2:] < -2).all()  # lags 1 and 2 suppress firing
    generator = torch.Generator().manual_seed(3)
    with_history = sample_with_history(model, rates[:120], generator)
    poisson = torch.poisson(torch.as_tensor(rates[:120]), generator=generator).numpy().astype(np.int64)
    assert short_isi_fraction(poisson, below=3) > 0.25
    assert short_isi_fraction(with_history, below=3) < 0.02
    # the firing rate stays that of the data (the GLM does not buy refractoriness by going silent)
    assert abs(with_history.mean() - counts[:120].mean()) < 0.15 * counts.mean()


def test_sampler_clips_counts_and_checks_units():
    model = SpikeHistoryGLM(n_units=3, history=2, max_spikes=2)
    rates = np.full((5, 7, 3), 20.0)
    counts = sample_with_history(model, rates, torch.Generator().manual_seed(0))
    assert counts.shape == (5, 7, 3) and counts.max() == 2 and counts.dtype.kind == "i"
    with pytest.raises(ValueError, match="3 units"):
        sample_with_history(model, np.ones((1, 4, 2)), torch.Generator())


def test_loss_is_the_full_poisson_nll():
    model = SpikeHistoryGLM(n_units=2, history=2, max_spikes=5)
    counts = torch.tensor([[[0.0, 3.0], [5.0, 1.0]]])
    log_rates = torch.log(torch.tensor([[[0.5, 2.0], [4.0, 0.1]]]))
    intensity = model(counts, log_rates)
    expected = (intensity - counts * torch.log(intensity) + torch.lgamma(counts + 1)).mean()
    assert torch.allclose(_loss(model, counts, log_rates, torch.ones(1, 2, 1)), expected, atol=1e-6)
