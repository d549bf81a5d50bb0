"""The markdown report, the per-species CSV and the reliability figure."""

from __future__ import annotations

from typing import Any

import numpy as np

from pokedex.evaluation.calibration import reliability
from pokedex.evaluation.metrics_report import per_species_csv, reliability_png, render_report


def _metrics(false_accept: float) -> dict[str, Any]:
    candidate = {"threshold": 0.5, "val_false_accept": false_accept, "val_auroc": 0.6}
    return {
        "model": "pokedex-test@1",
        "split": "test",
        "data_version": "abc",
        "species": 2,
        "n": 4.0,
        "acc_top1": 0.75,
        "acc_top5": 1.0,
        "acc_macro": 0.5,
        "types_f1": None,
        "calibration": {
            "temperature": 1.5,
            "fitted": True,
            "bins": 15,
            "ece_before": 0.1,
            "ece_after": 0.05,
            "nll_before": 1.0,
            "nll_after": 0.9,
        },
        "open_set": {
            "score": "msp",
            "threshold": 0.5,
            "false_reject": 0.05,
            "false_accept": false_accept,
            "accept_target": 0.95,
            "n_known": 4,
            "n_unknown": 10,
            "false_accept_by_kind": {"uniform_noise": false_accept},
            "candidates": {"msp": candidate, "energy": candidate},
        },
        "confused_pairs": [{"a": "ab|ra", "b": "zubat", "a_as_b": 1, "b_as_a": 0, "total": 1}],
    }


FIELDS = ("species", "n", "acc_top1", "acc_top5", "most_confused_with", "times")
ROWS = [
    dict(zip(FIELDS, ("zubat", 2, 1.0, 1.0, "", 0), strict=True)),
    dict(zip(FIELDS, ("abra", 2, 0.5, 1.0, "zubat", 1), strict=True)),
]


def test_report_states_the_numbers_and_escapes_tables() -> None:
    report = render_report(_metrics(0.1), ROWS, ["reliability.png"])
    assert "| top-1 | 75.00% |" in report
    assert "| types F1 (micro, 18 labels) | n/a |" in report
    assert "| before (T = 1) | 10.00% | 1.0000 |" in report
    assert "| ab\\|ra | zubat | 1 | 0 | 1 |" in report  # a | in a name cannot break the table
    assert "Rejection is weak" not in report
    assert "## Embeddings" not in report


def test_report_warns_when_rejection_lets_most_unknowns_through() -> None:
    assert "Rejection is weak" in render_report(_metrics(0.9), ROWS, ["reliability.png"])


def test_csv_lists_the_hardest_species_first() -> None:
    lines = per_species_csv(ROWS).splitlines()
    assert lines[1] == "abra,2,0.5000,1.0000,zubat,1"
    assert lines[2] == "zubat,2,1.0000,1.0000,,0"


def test_reliability_figure_is_a_stable_png() -> None:
    rel = reliability(np.array([0.2, 0.9, 0.95]), np.array([0, 1, 1]))
    png = reliability_png(rel, rel, 1.0)
    assert png.startswith(b"\x89PNG")
    assert png == reliability_png(rel, rel, 1.0)  # no timestamps: same numbers, same bytes
