"""Small sessions with known latent structure for the neural baseline tests."""

from __future__ import annotations

import numpy as np

from nwb_ldns.data.schema import make_session_dataset

SOURCE = {"source_path": "/data/rot.nwb", "source_identifier": "rot", "source_sha256": "11" * 32}


def rotation_session(n_trials: int = 300, n_bins: int = 30, n_units: int = 20, seed: int = 0, variable=False,
                     behavior=False):
    """Poisson units driven by a 2-D rotation with a random phase and amplitude per trial: the trial average
    (PSTH) washes the rotation out, so only a model of the latent dynamics reproduces the pairwise correlations.
    behavior=True adds a 2-D `behavior` read linearly from the rotation (plus a little noise), as a velocity."""
    rng = np.random.default_rng(seed)
    phase, amp = rng.uniform(0, 2 * np.pi, n_trials), rng.uniform(0.5, 1.5, n_trials)
    angle = phase[:, None] + 2 * np.pi / 15 * np.arange(n_bins)
    z = amp[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    rates = np.exp(np.log(rng.uniform(0.1, 0.4, n_units)) + z @ (0.8 * rng.normal(size=(2, n_units))))
    mask = np.ones((n_trials, n_bins), bool)
    if variable:
        mask = np.arange(n_bins)[None, :] < rng.integers(n_bins // 2, n_bins + 1, n_trials)[:, None]
    split = np.where(np.arange(n_trials) < int(0.8 * n_trials), "train", "test")
    ds = make_session_dataset(rng.poisson(rates) * mask[:, :, None], 0.01, mask=mask, split=split,
                              unit_ids=np.arange(n_units) + 7, attrs=SOURCE)
    if behavior:
        velocity = z @ np.array([[0.3, -0.1], [0.2, 0.25]]) + 0.02 * rng.normal(size=z.shape)
        ds = ds.assign(behavior=(("trial", "time", "behavior_dim"), (velocity * mask[:, :, None]).astype(np.float32)))
        ds = ds.assign_coords(behavior_dim=["x", "y"])
    return ds
