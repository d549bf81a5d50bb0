"""Open-set scores and threshold choice."""

from __future__ import annotations

import numpy as np
import pytest

from pokedex.core.openset import (
    auroc,
    class_centroids,
    cosine_score,
    fit_open_set,
    known_score,
    rule_score,
    score_table,
    threshold_for,
)


def fit(*logits: np.ndarray, **kwargs: object) -> dict:
    """fit_open_set on logits alone (T = 1): the msp and energy candidates."""
    return fit_open_set(*(score_table(z, 1.0) for z in logits), **kwargs)  # type: ignore[arg-type]


def test_scores_follow_their_formulas() -> None:
    logits = np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    msp = known_score(logits, 2.0, "msp")
    assert msp[0] == pytest.approx(np.exp(1) / (np.exp(1) + 2))  # softmax of z / T
    assert msp[1] == pytest.approx(1 / 3)
    energy = known_score(logits, 2.0, "energy")
    assert energy[1] == pytest.approx(2.0 * np.log(3 * np.exp(0.5)))  # T * logsumexp(z / T)
    assert known_score(logits * 1000, 1.0, "energy")[0] == pytest.approx(2000.0)  # no overflow
    with pytest.raises(ValueError, match="unknown open-set score"):
        known_score(logits, 1.0, "entropy")


def test_threshold_accepts_at_least_the_target_share() -> None:
    scores = np.random.default_rng(0).random(1000)
    t = threshold_for(scores, 0.95)
    assert (scores >= t).mean() >= 0.95
    assert (scores >= np.nextafter(t, 2.0)).mean() < 0.95  # and no higher threshold would


def test_auroc_of_separated_overlapping_and_tied_scores() -> None:
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


def test_fit_picks_the_score_that_lets_fewer_unknowns_through() -> None:
    rng = np.random.default_rng(0)

    def sprites(n: int) -> np.ndarray:  # confident and large: both scores separate them
        z = rng.normal(0, 1, (n, 10))
        z[:, 0] += 12
        return z

    # unknowns: one large logit (high msp) but the others very negative, so logsumexp is small
    # only in the energy score... and a flat high set that fools energy but not msp
    flat_high = np.full((200, 10), 9.0) + rng.normal(0, 0.1, (200, 10))
    result = fit(sprites(200), flat_high, sprites(200), flat_high)
    assert result["score"] == "msp"  # flat logits have msp ~0.1, but energy ~ 9 + log 10
    assert result["candidates"]["energy"]["val_false_accept"] > 0.9
    assert result["false_accept"] == 0.0
    assert result["false_reject"] <= 0.1

    peaked_low = np.full((200, 10), -30.0)
    peaked_low[:, 0] = 0.0  # msp ~1 like a sprite, energy ~0 far below the sprites' ~12
    result = fit(sprites(200), peaked_low, sprites(200), peaked_low)
    assert result["score"] == "energy"
    assert result["false_accept"] == 0.0


def test_fit_reports_false_accepts_per_kind() -> None:
    known = np.tile([[5.0, 0.0]], (20, 1))
    unknown = np.array([[5.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    result = fit(known, unknown, known, unknown, test_kinds=["a", "a", "b", "b"])
    assert result["false_accept_by_kind"] == {"a": 0.5, "b": 0.0}
    assert result["false_accept"] == 0.25
    assert (result["n_known"], result["n_unknown"]) == (20, 4)


def test_centroids_are_unit_class_means_and_cosine_is_the_nearest() -> None:
    features = np.array([[2.0, 0.0], [0.0, 5.0], [3.0, 3.0], [1.0, 0.0]])
    labels = np.array([0, 0, 1, 0])
    c = class_centroids(features, labels, 3)
    unit = np.array([1.0, 0.0]) + np.array([1.0, 0.0]) + np.array([0.0, 1.0])  # mean direction
    assert np.allclose(c[0], unit / np.linalg.norm(unit))
    assert np.allclose(c[1], [2**-0.5, 2**-0.5])
    assert np.allclose(c[2], 0.0)  # a class without images matches nothing
    assert cosine_score(np.array([[10.0, 10.0], [0.0, -1.0]]), c) == pytest.approx([1.0, 0.0])


def test_combined_score_picks_what_neither_part_rejects_alone() -> None:
    """Unknowns with sprite-like energy but off-centroid embeddings, and the reverse: each
    single score lets half of them through, the standardised sum rejects both halves."""
    rng = np.random.default_rng(0)
    n, d = 400, 16
    centroids = np.eye(d)[:4]

    def images(energy: float, on_centroid: bool) -> dict[str, np.ndarray]:
        z = rng.normal(0, 0.3, (n, 4))
        z[:, 0] += energy
        f = rng.normal(0, 0.5, (n, d))
        f[:, 0] += 4.0 if on_centroid else 0.0
        return score_table(z, 1.0, f, centroids)

    known = images(10.0, True)
    unknown = {
        k: np.concatenate([a, b])
        for (k, a), b in zip(images(10.0, False).items(), images(0.0, True).values(), strict=True)
    }
    result = fit_open_set(known, unknown, images(10.0, True), unknown)
    assert result["score"] == "energy+cosine"
    assert result["candidates"]["energy"]["val_false_accept"] > 0.4
    assert result["candidates"]["cosine"]["val_false_accept"] > 0.4
    assert result["false_accept"] < 0.05
    assert set(result["standardize"]) == {"energy", "cosine"}
    # the stored rule reproduces the decision from a fresh table
    again = rule_score("energy+cosine", unknown, result["standardize"])
    assert ((again >= result["threshold"]).mean()) == result["false_accept"]
    with pytest.raises(ValueError, match="standardisation"):
        rule_score("energy+cosine", unknown)
