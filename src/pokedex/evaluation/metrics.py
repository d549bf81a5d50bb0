"""Classification metrics over logits: accuracy, types F1, per-species rows, confused pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pokedex.dex.typechart import TYPES


def accuracy(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1, top-5 and species-macro top-1."""
    top5 = np.argsort(-logits, axis=1)[:, :5]
    hit1 = top5[:, 0] == labels
    per_class = [hit1[labels == c].mean() for c in np.unique(labels)]
    return {
        "acc_top1": float(hit1.mean()),
        "acc_top5": float((top5 == labels[:, None]).any(1).mean()),
        "acc_macro": float(np.mean(per_class)),
        "n": float(len(labels)),
    }


def type_targets(classes: list[str], types_of: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Multi-hot ``(C, 18)`` of each class's types (a zero row where the catalog has none)."""
    targets = np.zeros((len(classes), len(TYPES)), dtype=np.float32)
    for i, name in enumerate(classes):
        for t in types_of.get(name, ()):
            targets[i, TYPES.index(t)] = 1.0
    return targets


def types_f1(type_logits: np.ndarray, labels: np.ndarray, targets: np.ndarray) -> float | None:
    """Micro F1 of the types head (sigmoid > 0.5) against the true species' types.

    ``type_logits`` ``(N, T)``, ``labels`` ``(N,)``, ``targets`` ``(C, T)`` multi-hot. Images of
    species with no known types are not scored; None when none is left.
    """
    known = targets[labels].any(axis=1)
    if not known.any() or type_logits.shape[1] != targets.shape[1]:
        return None
    pred = type_logits[known] > 0.0  # sigmoid(z) > 0.5  <=>  z > 0
    true = targets[labels[known]] > 0.5
    tp = float((pred & true).sum())
    # 2TP / (2TP + FP + FN), written with the predicted and true counts
    return 2.0 * tp / float(pred.sum() + true.sum())


def per_species(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """One row per species present in ``labels``: count, top-1, top-5, most frequent mistake."""
    top5 = np.argsort(-logits, axis=1)[:, :5]
    pred = top5[:, 0]
    rows = []
    for c in np.unique(labels):
        mask = labels == c
        wrong = pred[mask & (pred != c)]
        if len(wrong):
            values, counts = np.unique(wrong, return_counts=True)
            # np.unique sorts values, so argmax breaks ties by the lowest label: deterministic
            mistake, mistakes = classes[int(values[counts.argmax()])], int(counts.max())
        else:
            mistake, mistakes = "", 0
        rows.append(
            {
                "species": classes[int(c)],
                "n": int(mask.sum()),
                "acc_top1": float((pred[mask] == c).mean()),
                "acc_top5": float((top5[mask] == c).any(1).mean()),
                "most_confused_with": mistake,
                "times": mistakes,
            }
        )
    return rows


def confused_pairs(
    labels: np.ndarray, pred: np.ndarray, classes: list[str], k: int = 20
) -> list[dict[str, Any]]:
    """The ``k`` species pairs most often mistaken for each other, both directions counted."""
    wrong = labels != pred
    a, b = labels[wrong], pred[wrong]
    counts: dict[tuple[int, int], list[int]] = {}
    for t, p in zip(a.tolist(), b.tolist(), strict=True):
        key = (min(t, p), max(t, p))
        pair = counts.setdefault(key, [0, 0])
        pair[0 if t == key[0] else 1] += 1  # [first taken for second, second taken for first]
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:k]
    return [
        {
            "a": classes[i],
            "b": classes[j],
            "a_as_b": ab,
            "b_as_a": ba,
            "total": ab + ba,
        }
        for (i, j), (ab, ba) in ranked
    ]
