"""ECE and temperature scaling on logits whose calibration is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from pokedex.evaluation.calibration import calibration_of, fit_temperature, nll, reliability


def _logits_with_confidence(confidence: float, n: int, classes: int = 5) -> np.ndarray:
    """Logits ``(n, classes)`` whose softmax gives ``confidence`` to class 0, the rest shared."""
    z = np.zeros((n, classes))
    # softmax(z)[0] = e^a / (e^a + C - 1) = confidence
    z[:, 0] = np.log(confidence * (classes - 1) / (1 - confidence))
    return z


def test_overconfident_model_has_the_gap_as_ece() -> None:
    # every prediction says 80 %, 60 % are right: ECE is exactly 0.2
    logits = _logits_with_confidence(0.8, 100)
    labels = np.where(np.arange(100) < 60, 0, 1)
    rel = calibration_of(logits, labels)
    assert rel.ece == pytest.approx(0.2)
    assert rel.count.sum() == 100
    assert rel.count[11] == 100  # 0.8 sits in (0.7333, 0.8]


def test_ece_weights_bins_by_their_count() -> None:
    # 30 at 95 % confidence all right (gap 0.05), 10 at 55 % with 5 right (gap 0.05),
    # 60 at 35 % with 21 right (gap 0): ECE = 0.3 * 0.05 + 0.1 * 0.05 = 0.02
    logits = np.concatenate(
        [_logits_with_confidence(c, n) for c, n in ((0.95, 30), (0.55, 10), (0.35, 60))]
    )
    labels = np.zeros(100, dtype=int)
    labels[30 + 5 : 40] = 1  # half of the 55 % group wrong
    labels[40 + 21 :] = 1  # 39 of the 35 % group wrong
    assert calibration_of(logits, labels).ece == pytest.approx(0.02)


def test_bins_are_right_closed() -> None:
    rel = reliability(np.array([0.0, 1 / 15, 1.0, 0.5]), np.array([1, 1, 1, 0]))
    assert rel.count[0] == 2  # 0 and exactly 1/15 share the first bin
    assert rel.count[-1] == 1  # a confidence of 1.0 is in the last bin, not past it
    assert np.isnan(rel.accuracy[1])  # an empty bin has no accuracy and adds nothing to ECE


def test_perfectly_calibrated_labels_give_small_ece() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20_000, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (probs.cumsum(1) > rng.random((20_000, 1))).argmax(1)  # drawn from the softmax
    assert calibration_of(logits, labels).ece < 0.015


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (5000, 10))
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = (probs.cumsum(1) > rng.random((5000, 1))).argmax(1)
    # the model reports z * T: dividing by the fitted T must undo it
    t = fit_temperature(z * true_temperature, labels)
    assert t == pytest.approx(true_temperature, rel=0.10)
    assert nll(z * true_temperature, labels, t) < nll(z * true_temperature, labels)


def test_nll_matches_the_definition() -> None:
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
    assert nll(logits, np.array([0, 2])) == pytest.approx(-(np.log(0.7) + np.log(0.5)) / 2)
