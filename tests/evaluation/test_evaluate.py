"""`evaluate` end to end on the colour world, where the right answers are known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pokedex.jobs.evaluate as evaluate_module
from pokedex.core.bundle import EMBEDDINGS_FILE, Bundle, read_bundle, update_meta
from pokedex.core.schemas import EmbeddingMap
from pokedex.data.unknowns import KINDS
from pokedex.errors import PokedexError
from pokedex.jobs.evaluate import evaluate
from tests.evaluation.conftest import CLASSES, COLOURS, SPLIT_SIZES, blob

UNKNOWNS = 60  # per set, 12 of each generated kind: enough to see a rate, quick to run


@pytest.fixture(autouse=True)
def _fewer_unknowns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_module, "UNKNOWNS_PER_SET", UNKNOWNS)


def write_photos(root: Path) -> Path:
    """Two wide 'photos' per species: a blob on an opaque background, plus an unknown species."""
    rng = np.random.default_rng(7)
    for name in [*CLASSES, "missingno"]:
        colour = COLOURS.get(name, ((0, 0, 0), ()))[0]
        (root / name).mkdir(parents=True)
        for i in range(2):
            background = tuple(int(v) for v in rng.integers(90, 170, 3))
            image = blob(rng, colour, background, size=(160, 120)).convert("RGB")
            image.save(root / name / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def calibrated(
    colour_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path, Path]:
    """One calibrating evaluation with photos: (metrics, bundle folder, output folder)."""
    root = tmp_path_factory.mktemp("calibrated")
    processed, pristine = colour_world
    shutil.copytree(pristine, root / "bundle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate_module, "UNKNOWNS_PER_SET", UNKNOWNS)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        metrics = evaluate(
            root / "bundle", processed, root / "out", photos=write_photos(root / "photos")
        )
    return metrics, root / "bundle", root / "out"


def test_a_perfect_model_scores_one(calibrated: tuple[dict[str, Any], Path, Path]) -> None:
    metrics, _, _ = calibrated
    assert metrics["acc_top1"] == 1.0
    assert metrics["acc_top5"] == 1.0
    assert metrics["acc_macro"] == 1.0
    assert metrics["types_f1"] == 1.0
    assert metrics["n"] == len(CLASSES) * SPLIT_SIZES["test"]
    assert metrics["species"] == len(CLASSES)
    assert metrics["data_version"] == "colourworld01"
    assert metrics["confused_pairs"] == []


def test_outputs_are_written(calibrated: tuple[dict[str, Any], Path, Path]) -> None:
    metrics, _, out = calibrated
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "per_species.csv",
        "reliability.png",
        "report.md",
    ]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")
    rows = (out / "per_species.csv").read_text().splitlines()
    assert rows[0] == "species,n,acc_top1,acc_top5,most_confused_with,times"
    assert sorted(r.split(",")[0] for r in rows[1:]) == CLASSES
    assert all(r.split(",")[2] == "1.0000" for r in rows[1:])
    report = (out / "report.md").read_text()
    assert "| top-1 | 100.00% |" in report
    assert "No mistakes." in report
    assert "![reliability diagram](reliability.png)" in report


def test_calibration_is_fitted_and_stored(calibrated: tuple[dict[str, Any], Path, Path]) -> None:
    metrics, bundle_path, _ = calibrated
    cal = metrics["calibration"]
    assert cal["fitted"] is True
    # the mislabelled-looking val image keeps the optimum well inside the search range
    assert 0.1 < cal["temperature"] < 10
    assert 0.0 <= cal["ece_after"] <= 1.0
    meta = read_bundle(bundle_path).meta
    assert meta["temperature"] == pytest.approx(cal["temperature"])
    keep = ("score", "threshold", "standardize", "false_accept", "false_reject")
    assert meta["open_set"] == {k: metrics["open_set"][k] for k in keep if k in metrics["open_set"]}
    centroids = np.load(bundle_path / "centroids.npy", allow_pickle=False)
    assert centroids.shape == (len(CLASSES), centroids.shape[1])
    assert centroids.dtype == np.float16
    assert meta["confused_pairs"] == metrics["confused_pairs"][: evaluate_module.CONFUSED_IN_BUNDLE]


def test_threshold_rejects_generated_images(calibrated: tuple[dict[str, Any], Path, Path]) -> None:
    osr = calibrated[0]["open_set"]
    assert osr["score"] in ("msp", "energy", "cosine", "energy+cosine")
    assert set(osr["candidates"]) == {"msp", "energy", "cosine", "energy+cosine"}
    assert osr["n_unknown"] == UNKNOWNS
    assert osr["false_accept"] <= 0.2  # most non-Pokémon are flagged unknown
    assert osr["false_accept_by_kind"]["uniform_noise"] == 0.0
    assert osr["false_reject"] <= 0.25  # 95 % of val sprites accepted; test is drawn alike
    assert set(osr["false_accept_by_kind"]) == set(KINDS)  # photos given: every kind


def test_photos_are_scored(calibrated: tuple[dict[str, Any], Path, Path]) -> None:
    photos = calibrated[0]["photos"]
    assert photos["n"] == 2 * len(CLASSES)  # the unknown species' photos are skipped
    assert 0.0 <= photos["acc_top1"] <= photos["acc_top5"] <= 1.0
    # recorded in the bundle under the training run's keys, next to its other metrics
    recorded = read_bundle(calibrated[1]).meta["metrics"]
    assert recorded["photos/acc_top1"] == photos["acc_top1"]
    assert recorded["photos/n"] == photos["n"]
    assert 0.0 <= photos["accepted"] <= 1.0
    assert "## Real photos" in (calibrated[2] / "report.md").read_text()


def test_without_calibrate_the_bundle_is_untouched(
    bundle: Bundle, processed: Path, tmp_path: Path
) -> None:
    bundle = update_meta(bundle, temperature=2.0)
    before = (bundle.path / "bundle.json").read_bytes()
    metrics = evaluate(bundle, processed, tmp_path / "out", split="val", calibrate=False)
    assert metrics["calibration"]["temperature"] == 2.0
    assert metrics["calibration"]["fitted"] is False
    assert metrics["split"] == "val"
    assert (bundle.path / "bundle.json").read_bytes() == before


def test_an_output_folder_with_other_files_is_refused(
    bundle: Bundle, processed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PokedexError, match=r"notes\.txt"):
        evaluate(bundle, processed, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_missing_tracking_store_is_skipped_not_created(
    bundle: Bundle, processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = update_meta(bundle, run={"mlflow_run_id": "0" * 32})
    store = tmp_path / "nowhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    evaluate(bundle, processed, tmp_path / "out", calibrate=False)
    assert not store.exists()


def test_metrics_and_files_go_to_the_training_run(
    bundle: Bundle, processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    bundle = update_meta(bundle, run={"mlflow_run_id": run_id})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    evaluate(bundle, processed, tmp_path / "out", calibrate=False)
    logged = client.get_run(run_id).data.metrics
    assert logged["eval/test/acc_top1"] == 1.0
    assert logged["eval/test/temperature"] == 1.0
    assert "eval/test/open_set_false_accept" in logged
    files = {Path(f.path).name for f in client.list_artifacts(run_id, "evaluation/test")}
    assert files == {"metrics.json", "report.md", "reliability.png", "per_species.csv"}


@pytest.mark.slow
def test_embedding_explorer(bundle: Bundle, processed: Path, tmp_path: Path) -> None:
    metrics = evaluate(bundle, processed, tmp_path / "out", embeddings=True)
    html = (tmp_path / "out" / "embeddings.html").read_text()
    # plotly escapes <, > and / inside its JSON
    html = html.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u002f", "/")
    assert "plotly" in html
    assert "<b>leaf</b><br>grass/poison" in html  # hover: species and types
    assert '"name":"fire"' in html.replace(" ", "")  # one trace per primary type
    assert (tmp_path / "out" / "embeddings.png").read_bytes().startswith(b"\x89PNG")
    assert "![embeddings](embeddings.png)" in (tmp_path / "out" / "report.md").read_text()
    # the coordinates travel in the bundle, in the API's schema, for the UI's map
    stored = (bundle.path / EMBEDDINGS_FILE).read_bytes()
    assert stored == (tmp_path / "out" / EMBEDDINGS_FILE).read_bytes()
    points = EmbeddingMap.model_validate_json(stored)
    assert len(points.x) == metrics["n"] == len(CLASSES) * SPLIT_SIZES["test"]
    assert points.split == metrics["split"] == "test"
    assert set(points.species) <= set(CLASSES)
    assert ["grass", "poison"] in points.types
