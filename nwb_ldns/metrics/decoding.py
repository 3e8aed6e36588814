"""Behaviour decoding R^2 with the reference's ridge decoder (ldns-reference.md section 4 item 10).

Ridge regression (alpha 1e-6, with intercept, like sklearn's Ridge) from per-bin features (rates or smoothed
counts, one sample per valid bin, no lags) to behaviour; R^2 is sklearn's r2_score with a uniform average over
behaviour dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nwb_ldns.errors import SessionContentError


def _bins(x, mask) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise SessionContentError(f"decoder inputs must be [trial, time, dim], got shape {x.shape}")
    rows = x.reshape(-1, x.shape[2])
    if mask is not None:
        rows = rows[np.asarray(mask, dtype=bool).reshape(-1)]
    finite = np.isfinite(rows).all(axis=1)
    return rows, finite


@dataclass
class RidgeDecoder:
    """Linear map features -> behaviour fitted by ridge regression with an unpenalised intercept."""

    coef: np.ndarray  # [features, outputs]
    intercept: np.ndarray  # [outputs]

    @classmethod
    def fit(cls, features, behavior, alpha: float = 1e-6, mask=None) -> "RidgeDecoder":
        x, fx = _bins(features, mask)
        y, fy = _bins(behavior, mask)
        keep = fx & fy  # behaviour may hold NaN (nlb allow_nans)
        x, y = x[keep], y[keep]
        if len(x) < 2:
            raise SessionContentError("too few valid bins to fit the behaviour decoder")
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - xm, y - ym
        coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
        return cls(coef, ym - xm @ coef)

    def predict(self, features) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        return x @ self.coef + self.intercept


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination per output, averaged uniformly (sklearn's default); rows with NaN dropped."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1, np.shape(y_true)[-1])
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    keep = np.isfinite(y_true).all(axis=1) & np.isfinite(y_pred).all(axis=1)
    y_true, y_pred = y_true[keep], y_pred[keep]
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(scores.mean())


def decoding_r2(train_features, train_behavior, test_features, test_behavior, *, alpha: float = 1e-6,
                train_mask=None, test_mask=None) -> float:
    """Fit the ridge decoder on training bins and return R^2 on the test bins."""
    decoder = RidgeDecoder.fit(train_features, train_behavior, alpha, train_mask)
    x, _ = _bins(test_features, test_mask)
    y, _ = _bins(test_behavior, test_mask)
    return r2_score(y, decoder.predict(x))


def circular_error(a, b) -> np.ndarray:
    """|a - b| wrapped to [0, pi] (radians)."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))))


def decoded_angles(velocity, angle_bin: int, half_width: int = 5) -> np.ndarray:
    """Reach angle of each trial from decoded velocity (trial, time, 2): the direction of its mean over the bins
    angle_bin - half_width .. angle_bin + half_width (one bin, as the paper reads true velocity, is too noisy
    for a velocity decoded from spikes)."""
    velocity = np.asarray(velocity, dtype=np.float64)
    window = velocity[:, max(angle_bin - half_width, 0): angle_bin + half_width + 1].mean(axis=1)
    return np.arctan2(window[:, 1], window[:, 0])
