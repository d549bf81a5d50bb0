"""The served model on its own: open-set rule, fallbacks, REF checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pokedex.errors import PokedexError
from pokedex.evaluation.openset import known_score
from pokedex.serving.batching import Row
from pokedex.serving.model import check_reload_ref, load_model, resolve_ref
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


@pytest.mark.parametrize("score", ["msp", "energy"])
def test_open_set_decision_matches_the_evaluation_rule(
    model_root: Path, tmp_path: Path, score: str
) -> None:
    """Serving accepts exactly the images `pokedex evaluate` would: same score, same side."""
    temperature = 1.7
    inputs = np.random.default_rng(0).normal(0, 3, (64, 3, 32, 32)).astype(np.float32)
    bare = load_model(str(_with_meta(model_root / "v1", tmp_path / "bare")))
    [logits] = bare.predictor.session.run(["species"], {"input": inputs})
    scores = known_score(logits, temperature, score)
    threshold = float(np.median(scores))  # half the images on each side
    rule = {"score": score, "threshold": threshold}
    bundle = _with_meta(model_root / "v1", tmp_path / "b", open_set=rule, temperature=temperature)
    model = load_model(str(bundle))
    out = model.predictor.run(inputs)
    served = [
        model.is_known(
            Row(
                out.probabilities[i],
                out.type_probabilities[i],
                out.features[i],
                float(out.energy[i]),
            )
        )
        for i in range(len(inputs))
    ]
    expected = scores >= threshold
    near = np.isclose(scores, threshold, rtol=1e-5)  # float32 vs float64 at the boundary
    assert np.array_equal(np.asarray(served)[~near], expected[~near])
    assert 0 < expected.sum() < len(inputs)


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


def test_registry_refs_without_a_registry_module_say_so() -> None:
    try:
        import pokedex.registry  # noqa: F401
    except ImportError:
        with pytest.raises(PokedexError, match=r"pokedex\.registry"):
            resolve_ref("models:/pokedex@production")
    else:
        pytest.skip("pokedex.registry exists: covered by the registry tests")


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
