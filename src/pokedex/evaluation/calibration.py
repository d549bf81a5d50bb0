"""Confidence calibration: expected calibration error, reliability bins, temperature scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

N_BINS = 15
# log-temperature search range, wide enough for a model that is barely trained
LOG_T_BOUNDS = (float(np.log(0.01)), float(np.log(100.0)))


@dataclass(frozen=True)
class Reliability:
    """Equal-width confidence bins ``(lo, hi]``: what a reliability diagram draws."""

    edges: np.ndarray  # (B + 1,)
    count: np.ndarray  # (B,) samples per bin
    confidence: np.ndarray  # (B,) mean confidence per bin (nan where empty)
    accuracy: np.ndarray  # (B,) accuracy per bin (nan where empty)

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |accuracy - confidence|."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((gaps * self.count[filled]).sum() / max(1, self.count.sum()))


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Bin predictions by their confidence ``(N,)`` and compare with correctness ``(N,)``."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins: a confidence of exactly 1.0 lands in the last bin, 1/15 in the first
    idx = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins) / count
    return Reliability(edges=edges, count=count, confidence=conf, accuracy=acc)


def calibration_of(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> Reliability:
    """Reliability bins of the top-1 softmax probability at ``temperature``."""
    z = logits / temperature
    log_probs = z - logsumexp(z, axis=1, keepdims=True)
    confidence = np.exp(log_probs.max(axis=1))
    return reliability(confidence, log_probs.argmax(axis=1) == labels)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels at ``temperature``."""
    z = logits.astype(np.float64) / temperature
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising NLL on held-out ``logits`` ``(N, C)`` (Guo et al. 2017).

    One scalar, so a bounded 1-D search over log T is exact enough and cannot go negative.
    """
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))
