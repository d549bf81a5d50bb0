"""Accuracy, types F1, per-species rows and confused pairs on hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest

from pokedex.evaluation.metrics import (
    accuracy,
    confused_pairs,
    per_species,
    type_targets,
    types_f1,
)

CLASSES = ["abra", "bulbasaur", "charmander", "ditto", "eevee", "gengar"]


def _one_hot_logits(pred: list[int], classes: int = len(CLASSES)) -> np.ndarray:
    logits = np.zeros((len(pred), classes))
    logits[np.arange(len(pred)), pred] = 5.0
    return logits


def test_a_perfect_model_scores_one() -> None:
    labels = np.array([0, 1, 2, 3, 4, 5, 0, 1])
    scores = accuracy(_one_hot_logits(labels.tolist()), labels)
    assert scores == {"acc_top1": 1.0, "acc_top5": 1.0, "acc_macro": 1.0, "n": 8.0}


def test_macro_accuracy_weights_species_equally() -> None:
    # abra: 3 of 3 right; bulbasaur: 0 of 1 -> top-1 3/4, macro (1 + 0) / 2
    labels = np.array([0, 0, 0, 1])
    scores = accuracy(_one_hot_logits([0, 0, 0, 2]), labels)
    assert scores["acc_top1"] == pytest.approx(0.75)
    assert scores["acc_macro"] == pytest.approx(0.5)


def test_top5_counts_a_label_ranked_fifth_not_sixth() -> None:
    ranks = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]] * 2)  # class 0 best ... class 5 last
    scores = accuracy(ranks, np.array([4, 5]))
    assert scores["acc_top1"] == 0.0
    assert scores["acc_top5"] == 0.5


def test_types_f1_is_micro_over_labels() -> None:
    types_of = {"abra": ("psychic",), "bulbasaur": ("grass", "poison")}
    targets = type_targets(CLASSES[:2], types_of)
    assert targets.shape == (2, 18)
    logits = np.full((2, 18), -3.0)
    psychic, grass, fire = 13, 11, 9  # indexes in TYPES
    logits[0, psychic] = 2.0  # abra: psychic right
    logits[1, grass] = logits[1, fire] = 2.0  # bulbasaur: grass right, fire wrong, poison missed
    # TP 2, predicted 3, true 3 -> 2 * 2 / 6
    assert types_f1(logits, np.array([0, 1]), targets) == pytest.approx(2 / 3)


def test_types_f1_skips_species_without_types() -> None:
    targets = type_targets(CLASSES[:2], {"abra": ("psychic",)})
    logits = np.full((2, 18), 3.0)  # every type predicted for both images
    # only abra is scored: TP 1, predicted 18, true 1
    assert types_f1(logits, np.array([0, 1]), targets) == pytest.approx(2 / 19)
    assert types_f1(logits[1:], np.array([1]), targets) is None


def test_per_species_rows_name_the_usual_mistake() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    rows = per_species(_one_hot_logits([0, 2, 2, 3, 1, 1]), labels, CLASSES)
    abra, bulbasaur = rows
    assert abra == {
        "species": "abra",
        "n": 4,
        "acc_top1": 0.25,
        "acc_top5": 1.0,
        "most_confused_with": "charmander",
        "times": 2,
    }
    assert bulbasaur["acc_top1"] == 1.0
    assert bulbasaur["most_confused_with"] == ""


def test_confused_pairs_count_both_directions_and_rank_by_total() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 3])
    pred = np.array([1, 1, 0, 3, 3, 2, 3])
    pairs = confused_pairs(labels, pred, CLASSES, k=5)
    assert pairs == [
        {"a": "abra", "b": "bulbasaur", "a_as_b": 2, "b_as_a": 1, "total": 3},
        {"a": "charmander", "b": "ditto", "a_as_b": 2, "b_as_a": 0, "total": 2},
    ]
    assert confused_pairs(labels, pred, CLASSES, k=1) == pairs[:1]
    assert confused_pairs(labels, labels, CLASSES) == []
