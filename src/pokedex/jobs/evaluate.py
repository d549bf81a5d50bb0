"""`pokedex evaluate`: accuracy, calibration, open-set threshold and a report for a model bundle.

PyTorch is the reference path here: the ONNX variants are checked against these numbers.
Writes one folder, replaced as a whole:
    metrics.json  report.md  reliability.png  per_species.csv
    [embeddings.html  embeddings.png  embeddings.json]
and, when asked to calibrate, stores ``temperature``, ``open_set`` and ``confused_pairs`` in the
bundle metadata, the class centroids of the open-set score in ``centroids.npy`` (and
``embeddings.json`` in the bundle, for the UI's embedding map).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pokedex.core import openset
from pokedex.core.bundle import (
    CATALOG_FILE,
    CENTROIDS_FILE,
    EMBEDDINGS_FILE,
    Bundle,
    npy_bytes,
    read_catalog,
    update_meta,
)
from pokedex.core.preprocess import PreprocessSpec
from pokedex.data.photos import load_labelled_canvases
from pokedex.data.unknowns import generate_unknowns
from pokedex.evaluation import calibration
from pokedex.evaluation.inference import NetOutputs, load_split, run_net
from pokedex.evaluation.metrics import (
    accuracy,
    confused_pairs,
    per_species,
    type_targets,
    types_f1,
)
from pokedex.evaluation.metrics_report import per_species_csv, reliability_png, render_report
from pokedex.evaluation.tracking import log_evaluation
from pokedex.io import atomic_path, check_replaceable, write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

OUTPUTS = frozenset(
    {
        "metrics.json",
        "report.md",
        "reliability.png",
        "per_species.csv",
        "embeddings.html",
        "embeddings.png",
        EMBEDDINGS_FILE,
    }
)
CONFUSED_IN_BUNDLE = 10  # the model page of the UI shows the worst pairs
UNKNOWNS_PER_SET = 300  # generated non-Pokémon images per set (one set chooses, one measures)


def _species_types(bundle: Bundle, processed: Path) -> dict[str, tuple[str, ...]]:
    """Each species' types: from the bundle's catalog, else from the processed data's."""
    from pokedex.dex.catalog import load_catalog

    if (bundle.path / CATALOG_FILE).is_file():
        catalog = read_catalog(bundle)
    elif (processed / CATALOG_FILE).is_file():
        catalog = load_catalog(processed / CATALOG_FILE)
    else:
        log.info("no catalog.json in the bundle or %s: types F1 is not measured", processed)
        return {}
    return {name: s.types for name, s in catalog.items()}


def evaluate(
    ref_or_bundle: str | Path | Bundle,
    processed: Path,
    out: Path,
    *,
    split: str = "test",
    calibrate: bool = True,
    embeddings: bool = False,
    photos: Path | None = None,
) -> dict[str, Any]:
    """Evaluate a model on a split of the processed data; write the report folder ``out``.

    ``calibrate`` fits the temperature and the open-set threshold on val and stores both in
    the bundle; without it the bundle's temperature is used and the bundle is left untouched.
    """
    from pokedex.models.net import load_net
    from pokedex.store.registry import resolve_model

    start = time.perf_counter()
    bundle = (
        ref_or_bundle if isinstance(ref_or_bundle, Bundle) else resolve_model(str(ref_or_bundle))
    )
    processed, out = Path(processed), Path(out)
    check_replaceable(out, OUTPUTS.__contains__)  # replaced as a whole
    images, labels = load_split(processed, split, bundle.classes)
    val_images, val_labels = load_split(processed, "val", bundle.classes)
    net = load_net(bundle).to(memory_format=torch.channels_last)
    spec = bundle.preprocess
    log.info("evaluating %s on %d %s images", bundle.name, len(labels), split)
    outputs = run_net(net, images, spec, features=True)
    val = run_net(net, val_images, spec, features=True)
    centroids = _centroids(net, processed, bundle)
    temperature = (
        calibration.fit_temperature(val.species, val_labels) if calibrate else bundle.temperature
    )
    before = calibration.calibration_of(outputs.species, labels)
    after = calibration.calibration_of(outputs.species, labels, temperature)
    types_of = _species_types(bundle, processed)
    rows = per_species(outputs.species, labels, bundle.classes)
    metrics = _closed_set_metrics(bundle, processed, split, outputs, labels, types_of)
    metrics["calibration"] = _calibration_record(
        outputs.species, labels, temperature, calibrate, before, after
    )

    photo_canvases, photo_labels = None, None
    if photos is not None:
        photo_canvases, photo_labels, _ = load_labelled_canvases(Path(photos), bundle.classes)
    osr = _open_set(net, spec, val, outputs, temperature, centroids, photo_canvases)
    metrics["open_set"] = osr
    if photo_canvases is not None and photo_labels is not None:
        photo_outputs = run_net(net, photo_canvases, spec, features=True)
        metrics["photos"] = _photo_metrics(photo_outputs, photo_labels, osr, temperature, centroids)
    pred = outputs.species.argmax(axis=1)
    metrics["confused_pairs"] = confused_pairs(labels, pred, bundle.classes)

    def embedding_map(folder: Path) -> None:
        _write_embeddings(folder, outputs, labels, pred, bundle.classes, types_of, split)

    reliability = reliability_png(before, after, temperature)
    _write_report(out, metrics, rows, reliability, start, embedding_map if embeddings else None)
    if calibrate:
        _store_in_bundle(bundle, out, metrics, temperature, centroids, embeddings=embeddings)
    log_evaluation(bundle, metrics, out)
    _log_summary(bundle, split, metrics, temperature)
    return metrics


def _centroids(net: torch.nn.Module, processed: Path, bundle: Bundle) -> np.ndarray:
    """The training species' mean embedding directions ``(classes, D)``, for the cosine
    open-set score; float16, exactly what the server will read from the bundle."""
    train_images, train_labels = load_split(processed, "train", bundle.classes)
    train_features = run_net(net, train_images, bundle.preprocess, features=True).features
    assert train_features is not None
    centroids = openset.class_centroids(train_features, train_labels, len(bundle.classes))
    return centroids.astype(np.float16)


def _closed_set_metrics(
    bundle: Bundle,
    processed: Path,
    split: str,
    outputs: NetOutputs,
    labels: np.ndarray,
    types_of: dict[str, tuple[str, ...]],
) -> dict[str, Any]:
    """Which model on which data, its top-k accuracy and its types F1."""
    from pokedex.provenance import data_version

    return {
        "model": bundle.name,
        "split": split,
        "data_version": data_version(processed),
        "species": len(np.unique(labels)),
        **accuracy(outputs.species, labels),
        "types_f1": types_f1(outputs.types, labels, type_targets(bundle.classes, types_of)),
    }


def _calibration_record(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature: float,
    fitted: bool,
    before: calibration.Reliability,
    after: calibration.Reliability,
) -> dict[str, Any]:
    """The temperature and what it does to the ECE and the NLL of the logits ``(N, C)``."""
    return {
        "temperature": temperature,
        "fitted": fitted,
        "bins": calibration.N_BINS,
        "ece_before": before.ece,
        "ece_after": after.ece,
        "nll_before": calibration.nll(logits, labels),
        "nll_after": calibration.nll(logits, labels, temperature),
    }


def _score_table(
    outputs: NetOutputs, temperature: float, centroids: np.ndarray
) -> dict[str, np.ndarray]:
    return openset.score_table(outputs.species, temperature, outputs.features, centroids)


def _open_set(
    net: torch.nn.Module,
    spec: PreprocessSpec,
    val: NetOutputs,
    test: NetOutputs,
    temperature: float,
    centroids: np.ndarray,
    photo_canvases: np.ndarray | None,
) -> dict[str, Any]:
    """The open-set rule: one set of generated non-Pokémon images chooses the score and its
    threshold with val, another measures them with the test split; photo corners, when there are
    photos, are their backgrounds, split the same way."""
    backgrounds = (
        (None, None) if photo_canvases is None else (photo_canvases[0::2], photo_canvases[1::2])
    )
    unknown_val, _ = generate_unknowns(UNKNOWNS_PER_SET, seed=0, backgrounds=backgrounds[0])
    unknown_test, kinds = generate_unknowns(UNKNOWNS_PER_SET, seed=1, backgrounds=backgrounds[1])

    def table(outputs: NetOutputs) -> dict[str, np.ndarray]:
        return _score_table(outputs, temperature, centroids)

    return openset.fit_open_set(
        table(val),
        table(run_net(net, unknown_val, spec, features=True)),
        table(test),
        table(run_net(net, unknown_test, spec, features=True)),
        test_kinds=kinds,
    )


def _photo_metrics(
    outputs: NetOutputs,
    labels: np.ndarray,
    osr: dict[str, Any],
    temperature: float,
    centroids: np.ndarray,
) -> dict[str, float]:
    """Top-k accuracy on the labelled photos, and the share the open-set rule accepts."""
    table = _score_table(outputs, temperature, centroids)
    score = openset.rule_score(osr["score"], table, osr.get("standardize"))
    return {
        **accuracy(outputs.species, labels),
        "accepted": float((score >= osr["threshold"]).mean()),
    }


def _write_report(
    out: Path,
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    reliability: bytes,
    start: float,
    embedding_map: Callable[[Path], None] | None,
) -> None:
    """The report folder, replaced as a whole; records the seconds taken in ``metrics``."""
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        figures = ["reliability.png"]
        write_bytes_atomic(tmp / "reliability.png", reliability)
        (tmp / "per_species.csv").write_text(per_species_csv(rows), encoding="utf-8")
        if embedding_map is not None:
            embedding_map(tmp)
            figures += ["embeddings.png", "embeddings.html"]
        metrics["seconds"] = round(time.perf_counter() - start, 1)
        (tmp / "report.md").write_text(render_report(metrics, rows, figures), encoding="utf-8")
        write_json_atomic(tmp / "metrics.json", metrics)


def _store_in_bundle(
    bundle: Bundle,
    out: Path,
    metrics: dict[str, Any],
    temperature: float,
    centroids: np.ndarray,
    *,
    embeddings: bool,
) -> None:
    """What serving reads back: the temperature, the open-set rule and its centroids, the worst
    confused pairs, the photo figures and (when made) the embedding map."""
    keep = ("score", "threshold", "standardize", "false_accept", "false_reject")
    osr = metrics["open_set"]
    write_bytes_atomic(bundle.path / CENTROIDS_FILE, npy_bytes(centroids))
    if embeddings:
        write_bytes_atomic(bundle.path / EMBEDDINGS_FILE, (out / EMBEDDINGS_FILE).read_bytes())
    # photo figures under the keys a training run records them with (the card, the docs)
    photos = {f"photos/{k}": v for k, v in metrics.get("photos", {}).items() if k != "accepted"}
    update_meta(
        bundle,
        temperature=temperature,
        open_set={k: osr[k] for k in keep if k in osr},
        confused_pairs=metrics["confused_pairs"][:CONFUSED_IN_BUNDLE],
        metrics={**bundle.meta.get("metrics", {}), **photos},
    )


def _log_summary(bundle: Bundle, split: str, metrics: dict[str, Any], temperature: float) -> None:
    cal, osr = metrics["calibration"], metrics["open_set"]
    log.info(
        "%s %s: top-1 %.2f%%, ECE %.2f%% -> %.2f%% (T=%.3g), false accept %.1f%% / reject %.1f%%",
        bundle.name,
        split,
        100 * metrics["acc_top1"],
        100 * cal["ece_before"],
        100 * cal["ece_after"],
        temperature,
        100 * osr["false_accept"],
        100 * osr["false_reject"],
    )


def _write_embeddings(
    out: Path,
    outputs: NetOutputs,
    labels: np.ndarray,
    pred: np.ndarray,
    classes: list[str],
    types_of: dict,
    split: str,
) -> None:
    from pokedex.evaluation.embeddings import (
        embeddings_html,
        embeddings_png,
        embeddings_record,
        project,
    )

    assert outputs.features is not None
    xy = project(outputs.features)  # (N, 2)
    species = [classes[i] for i in labels]
    types = [types_of.get(name, ()) for name in species]
    predicted = [classes[i] for i in pred]
    html = embeddings_html(xy, species, types, predicted)
    (out / "embeddings.html").write_text(html, encoding="utf-8")
    write_bytes_atomic(out / "embeddings.png", embeddings_png(xy, types))
    record = embeddings_record(xy, species, types, predicted, split)
    write_json_atomic(out / EMBEDDINGS_FILE, record)
