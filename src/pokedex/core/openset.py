"""Open-set rejection: is this picture one of the known species at all?

A score per image (higher = more like the training species) and a threshold chosen so that a
fixed share of val sprites is accepted, measured on the synthetic non-Pokémon images of
:mod:`pokedex.data.unknowns`. Numpy only, so serving computes the same score as evaluation.

Scores: ``msp`` and ``energy`` read the species logits; ``cosine`` reads the embedding, the
largest cosine similarity to the training species' mean directions (class centroids, which
ship in the bundle); ``energy+cosine`` adds the two after standardising each on the val
sprites, so an image must look like a sprite to the head and to the feature space alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCORES = ("msp", "energy", "cosine", "energy+cosine")
COMBINED = {"energy+cosine": ("energy", "cosine")}  # a sum of standardised parts
ACCEPT = 0.95  # share of known val sprites the threshold must accept


def known_score(logits: np.ndarray, temperature: float, kind: str) -> np.ndarray:
    """Per-image score ``(N,)`` from species logits ``(N, C)``; accept when score >= threshold.

    ``msp``: the largest calibrated probability, max softmax(z / T).
    ``energy``: the negative free energy, T * logsumexp(z / T) (Liu et al. 2020).
    """
    z = logits.astype(np.float64) / temperature
    top = z.max(axis=1)
    lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))  # stable logsumexp
    if kind == "msp":
        return np.exp(top - lse)
    if kind == "energy":
        return temperature * lse
    raise ValueError(f"unknown open-set score {kind!r}: use one of {SCORES}")


def threshold_for(scores: np.ndarray, accept: float = ACCEPT) -> float:
    """The largest threshold that still accepts at least ``accept`` of ``scores``."""
    need = max(1, int(np.ceil(accept * len(scores) - 1e-9)))  # 1e-9: 0.95 * 1000 is 950.0000001
    return float(np.sort(scores)[len(scores) - need])


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that a known image outscores an unknown one (ties count half)."""
    ranked = np.sort(unknown)
    below = np.searchsorted(ranked, known, side="left")
    ties = np.searchsorted(ranked, known, side="right") - below
    return float((below + 0.5 * ties).sum() / max(1, len(known) * len(unknown)))


def class_centroids(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Unit mean direction of each class's unit embeddings: ``(C, D)`` float32 from
    features ``(N, D)`` and labels ``(N,)``; a class without images gets a zero row."""
    sums = np.zeros((num_classes, features.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, _unit(features.astype(np.float64)))
    return _unit(sums).astype(np.float32)


def cosine_score(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Largest cosine similarity ``(N,)`` of embeddings ``(N, D)`` to the centroids ``(C, D)``."""
    f = _unit(np.asarray(features, dtype=np.float32))
    return (f @ np.asarray(centroids, dtype=np.float32).T).max(axis=1)  # no copy when float32


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def score_table(
    logits: np.ndarray,
    temperature: float,
    features: np.ndarray | None = None,
    centroids: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The single scores ``(N,)`` of images from their logits ``(N, C)`` (and, given both,
    their embeddings ``(N, D)`` and the class centroids: ``cosine``)."""
    table = {kind: known_score(logits, temperature, kind) for kind in ("msp", "energy")}
    if features is not None and centroids is not None:
        table["cosine"] = cosine_score(features, centroids)
    return table


def standardizer(known: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each single score over known images (val sprites)."""
    return {kind: (float(v.mean()), float(max(v.std(), 1e-12))) for kind, v in known.items()}


def rule_score(
    kind: str,
    table: dict[str, np.ndarray],
    standardize: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """The score ``kind`` from a :func:`score_table` (combined scores need ``standardize``)."""
    if kind in COMBINED:
        if standardize is None:
            raise ValueError(f"the {kind!r} score needs the standardisation of its parts")
        return sum((table[part] - standardize[part][0]) / standardize[part][1]
                   for part in COMBINED[kind])  # fmt: skip
    if kind not in SCORES:
        raise ValueError(f"unknown open-set score {kind!r}: use one of {SCORES}")
    return table[kind]


def fit_open_set(
    known_val: dict[str, np.ndarray],
    unknown_val: dict[str, np.ndarray],
    known_test: dict[str, np.ndarray],
    unknown_test: dict[str, np.ndarray],
    accept: float = ACCEPT,
    test_kinds: list[str] | None = None,
) -> dict[str, Any]:
    """Choose the score and threshold on val; measure false reject/accept on held-out sets.

    Every argument is a :func:`score_table`: val sprites, generated unknowns for choosing,
    test sprites, and other generated unknowns for measuring. Combined scores are candidates
    when the tables hold their parts.
    """
    standardize = standardizer(known_val)
    kinds_here = [
        k
        for k in SCORES
        if (set(COMBINED[k]) <= set(known_val) if k in COMBINED else k in known_val)
    ]
    candidates = {}
    for kind in kinds_here:
        known, unknown = (rule_score(kind, t, standardize) for t in (known_val, unknown_val))
        t = threshold_for(known, accept)
        candidates[kind] = {
            "threshold": t,
            "val_false_accept": float((unknown >= t).mean()),
            "val_auroc": auroc(known, unknown),
        }
    # fewest unknowns accepted on the choosing set; SCORES order breaks ties
    best = min(kinds_here, key=lambda k: candidates[k]["val_false_accept"])
    t = candidates[best]["threshold"]
    accepted = rule_score(best, unknown_test, standardize) >= t  # (M,) unknowns let through
    kinds = np.asarray(test_kinds if test_kinds is not None else ["generated"] * len(accepted))
    result = {
        "score": best,
        "threshold": t,
        "false_reject": float((rule_score(best, known_test, standardize) < t).mean()),
        "false_accept": float(accepted.mean()),
        "accept_target": accept,
        "n_known": len(next(iter(known_test.values()))),
        "n_unknown": len(accepted),
        "false_accept_by_kind": {
            k: float(accepted[kinds == k].mean()) for k in dict.fromkeys(kinds)
        },
        "candidates": candidates,
    }
    if best in COMBINED:
        result["standardize"] = {part: list(standardize[part]) for part in COMBINED[best]}
    return result
