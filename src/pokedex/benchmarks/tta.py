"""`pokedex benchmark tta`: what averaging the mirrored image buys, against what it costs.

Scores a model with and without test-time flip averaging (``PokedexNet.flip_average``: the mean
of the features of the image and of its mirror image, what `pokedex export --flip-average`
serves) on the test split and on a labelled photo set, and times both on the same batches.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pokedex.core.preprocess import canvases_to_input
from pokedex.data.photos import load_labelled_canvases
from pokedex.evaluation.metrics import accuracy


def run(bundle_ref: str, processed: Path, photos: Path | None) -> list[dict[str, float | str]]:
    """One row per image set: top-1/top-5 plain and flip-averaged, and seconds for each."""
    from pokedex.core.predictor import softmax
    from pokedex.jobs.predict import TorchPredictor
    from pokedex.store.registry import resolve_model

    predictor = TorchPredictor(resolve_model(bundle_ref))
    bundle = predictor.bundle
    sets = {
        "test sprites": (
            np.load(processed / "test_images.npy"),
            np.load(processed / "test_labels.npy").astype(np.int64),
        )
    }
    if photos is not None:
        canvases, labels, _ = load_labelled_canvases(photos, list(bundle.classes))
        sets["real photos"] = (canvases, labels)
    rows = []
    for name, (canvases, labels) in sets.items():
        x = canvases_to_input(canvases, bundle.preprocess)  # (N, 3, H, W)
        probabilities, seconds = {}, {}
        for flips in (False, True):
            predictor.net.flip_average = flips
            started = time.perf_counter()
            probabilities[flips] = softmax(predictor.logits(x))
            seconds[flips] = time.perf_counter() - started
        a, b = accuracy(probabilities[False], labels), accuracy(probabilities[True], labels)
        rows.append(
            {
                "set": f"{name} ({len(labels):,})",
                "top1": a["acc_top1"],
                "top1_tta": b["acc_top1"],
                "top5": a["acc_top5"],
                "top5_tta": b["acc_top5"],
                "cost": seconds[True] / seconds[False],
            }
        )
    return rows


def format_table(rows: list[dict[str, float | str]], model: str, machine: str) -> str:
    """A markdown table: each set's top-1/top-5 without and with flip averaging, and the cost."""
    out = [
        f"Model {model}; PyTorch fp32 on {machine}.",
        "",
        "| image set | top-1 | top-1 with flips | top-5 | top-5 with flips | inference cost |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gain = (float(r["top1_tta"]) - float(r["top1"])) * 100
        out.append(
            f"| {r['set']} | {r['top1']:.2%} | {r['top1_tta']:.2%} ({gain:+.1f} pt) | "
            f"{r['top5']:.2%} | {r['top5_tta']:.2%} | {r['cost']:.2f}× |"
        )
    return "\n".join(out)
