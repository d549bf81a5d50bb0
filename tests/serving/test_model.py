"""The served model on its own: open-set rule, fallbacks, REF checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pokedex.core.bundle import npy_bytes
from pokedex.core.openset import class_centroids, rule_score, score_table
from pokedex.errors import PokedexError
from pokedex.serving.batching import Row
from pokedex.serving.model import check_reload_ref, load_model
from pokedex.store.registry import resolve_ref
from tests.serving.conftest import CLASSES


def _row(probabilities: list[float], energy: float = 0.0) -> Row:
    return Row(np.asarray(probabilities, dtype=np.float32), np.zeros(18), np.ones(8), energy)


def _with_meta(src: Path, dst: Path, **meta: object) -> Path:
    shutil.copytree(src, dst)
    data = json.loads((dst / "bundle.json").read_text())
    (dst / "bundle.json").write_text(json.dumps({**data, **meta}))
    return dst


def test_open_set_max_probability(model_root: Path, tmp_path: Path) -> None:
    rule = {"score": "msp", "threshold": 0.5}
    model = load_model(str(_with_meta(model_root / "v1", tmp_path / "b", open_set=rule)))
    assert model.describe(_row([0.6, 0.1, 0.1, 0.1, 0.05, 0.05]), 3).known is True
    assert model.describe(_row([0.3, 0.3, 0.1, 0.1, 0.1, 0.1]), 3).known is False


def test_open_set_energy_lower_is_known(model_root: Path, tmp_path: Path) -> None:
    rule = {"score": "energy", "threshold": 5.0}  # on -energy, as `pokedex evaluate` fits it
    model = load_model(str(_with_meta(model_root / "v1", tmp_path / "b", open_set=rule)))
    flat = [1 / 6] * 6
    assert model.is_known(_row(flat, energy=-8.0)) is True
    assert model.is_known(_row(flat, energy=-2.0)) is False


@pytest.mark.parametrize("score", ["msp", "energy", "cosine", "energy+cosine"])
def test_open_set_decision_matches_the_evaluation_rule(
    model_root: Path, tmp_path: Path, score: str
) -> None:
    """Serving accepts exactly the images `pokedex evaluate` would: same score, same side."""
    temperature = 1.7
    inputs = np.random.default_rng(0).normal(0, 3, (64, 3, 32, 32)).astype(np.float32)
    bare = load_model(str(_with_meta(model_root / "v1", tmp_path / "bare")))
    logits, features = bare.predictor.session.run(["species", "features"], {"input": inputs})
    # centroids from half the images' own predictions, stored as the evaluation stores them
    centroids = class_centroids(features[::2], logits[::2].argmax(1), len(CLASSES))
    centroids = centroids.astype(np.float16)
    table = score_table(logits, temperature, features, centroids)
    standardize = {k: (float(v.mean()), float(v.std())) for k, v in table.items()}
    scores = rule_score(score, table, standardize)
    threshold = float(np.median(scores))  # half the images on each side
    rule = {"score": score, "threshold": threshold}
    if score == "energy+cosine":
        rule["standardize"] = {k: standardize[k] for k in ("energy", "cosine")}
    bundle = _with_meta(model_root / "v1", tmp_path / "b", open_set=rule, temperature=temperature)
    (bundle / "centroids.npy").write_bytes(npy_bytes(centroids))
    model = load_model(str(bundle))
    out = model.predictor.run(inputs)
    served = [
        model.is_known(
            Row(
                out.probabilities[i],
                out.type_probabilities[i],
                out.features[i],
                float(out.energy[i]),
                float(out.cosine[i]),
            )
        )
        for i in range(len(inputs))
    ]
    expected = scores >= threshold
    near = np.isclose(scores, threshold, rtol=1e-4, atol=1e-5)  # float32 vs 64 at the boundary
    assert np.array_equal(np.asarray(served)[~near], expected[~near])
    assert 0 < expected.sum() < len(inputs)


@pytest.mark.parametrize(
    ("centroids", "message"),
    [(None, "needs centroids.npy"), (np.zeros((6, 3)), "needs centroids.npy"),
     (np.zeros((5, 8)), r"shape \(5, 8\)")],
)  # fmt: skip
def test_a_cosine_rule_without_matching_centroids_fails_at_load(
    model_root: Path, tmp_path: Path, centroids: np.ndarray | None, message: str
) -> None:
    rule = {"score": "cosine", "threshold": 0.5}
    bundle = _with_meta(model_root / "v1", tmp_path / "b", open_set=rule)
    if centroids is not None:
        (bundle / "centroids.npy").write_bytes(npy_bytes(centroids))
    with pytest.raises(PokedexError, match=message):
        load_model(str(bundle))


def test_a_combined_rule_needs_its_standardisation(model_root: Path, tmp_path: Path) -> None:
    rule = {"score": "energy+cosine", "threshold": 0.0}
    bundle = _with_meta(model_root / "v1", tmp_path / "b", open_set=rule)
    with pytest.raises(PokedexError, match="standardize"):
        load_model(str(bundle))


def test_invalid_open_set_fails_at_load(model_root: Path, tmp_path: Path) -> None:
    bad = _with_meta(model_root / "v1", tmp_path / "b", open_set={"score": "vibes"})
    with pytest.raises(PokedexError, match="open_set"):
        load_model(str(bad))


def test_describe_without_catalog_falls_back(model_root: Path, tmp_path: Path) -> None:
    bare = _with_meta(model_root / "v1", tmp_path / "b")
    (bare / "catalog.json").unlink()
    (bare / "typechart.json").unlink()
    model = load_model(str(bare))
    types = np.zeros(18)
    types[9] = 0.9  # fire
    prediction = model.describe(Row(np.eye(6)[1], types, np.ones(8), 0.0), 2)
    assert prediction.species[0].name == CLASSES[1]
    assert prediction.species[0].national_number is None
    assert prediction.types == ["fire"]
    assert prediction.stats is None
    assert prediction.weaknesses == []


def test_class_count_mismatch_fails_at_load(model_root: Path, tmp_path: Path) -> None:
    bad = _with_meta(model_root / "v1", tmp_path / "b", num_classes=7)
    (bad / "classes.json").write_text(json.dumps([*CLASSES, "extra"]))
    with pytest.raises(PokedexError, match="outputs 6 classes"):
        load_model(str(bad))


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PokedexError, match="not found"):
        resolve_ref(str(tmp_path / "nope"))


def test_reload_ref_allowlist(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert check_reload_ref(str(root / "a"), [str(root)]) == str((root / "a").resolve())
    assert check_reload_ref("models:/pokedex@production", []) == "models:/pokedex@production"
    assert check_reload_ref("models:/pokedex/3", []) == "models:/pokedex/3"
    for ref in (str(root / "link"), str(tmp_path / "outside"), "s3://b/k", "models:/a b"):
        with pytest.raises(ValueError, match=r"."):
            check_reload_ref(ref, [str(root)])


def test_info_says_whether_the_model_averages_mirror_images(
    model_root: Path, tmp_path: Path
) -> None:
    assert load_model(str(model_root / "v1")).info().flip_average is False
    net = {"arch": "resnet18", "flip_average": True}
    flips = load_model(str(_with_meta(model_root / "v1", tmp_path / "b", net=net)))
    assert flips.info().flip_average is True
