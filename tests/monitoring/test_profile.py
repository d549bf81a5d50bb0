"""The reference profile: built through the served-model path, stored in the bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.core.bundle import read_bundle, update_meta
from pokedex.core.predictor import OnnxPredictor
from pokedex.errors import PokedexError
from pokedex.monitoring.drift import SCALARS
from pokedex.monitoring.profile import REFERENCE_FILE, observe, read_profile
from tests.monitoring.conftest import REFERENCE_IMAGES, canvases
from tests.serving.conftest import write_bundle

runner = CliRunner()


def test_the_profile_holds_every_reference_image(profiled_bundle: Path) -> None:
    data = json.loads((profiled_bundle / REFERENCE_FILE).read_text())
    assert data["images"] == REFERENCE_IMAGES
    assert data["model"] == read_bundle(profiled_bundle).name
    assert (data["split"], data["data_version"], data["variant"]) == ("val", "sprites01", "fp32")
    assert set(data["features"]) == set(SCALARS)
    assert all(len(v) == REFERENCE_IMAGES for v in data["features"].values())
    assert np.asarray(data["embedding_head"]).shape == (REFERENCE_IMAGES, 8)


def test_the_stored_values_are_what_the_predictor_sees(profiled_bundle: Path) -> None:
    profile = read_profile(read_bundle(profiled_bundle))
    assert profile is not None
    predictor = OnnxPredictor(profiled_bundle, variant="fp32", threads=1)
    again = observe(predictor, canvases(range(5)))  # the first five reference sprites
    for name in SCALARS:
        np.testing.assert_allclose(profile.observations.values[name][:5], again.values[name],
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(profile.observations.embedding[:5], again.embedding, rtol=1e-5)


def test_a_bundle_without_a_profile_has_none(tmp_path: Path) -> None:
    assert read_profile(read_bundle(write_bundle(tmp_path / "b"))) is None


def test_a_profile_of_another_model_version_is_refused(
    profiled_bundle: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(profiled_bundle, tmp_path / "copy")
    bundle = update_meta(read_bundle(copy), version="v2")
    with pytest.raises(PokedexError, match="rebuild it with `pokedex drift profile`"):
        read_profile(bundle)


def test_a_corrupt_profile_is_a_clear_error(profiled_bundle: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(profiled_bundle, tmp_path / "copy")
    (copy / REFERENCE_FILE).write_text('{"format_version": 1, "features": {}}')
    with pytest.raises(PokedexError, match="not a drift reference"):
        read_profile(read_bundle(copy))


def test_cli_profile_writes_the_reference(processed: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    args = ["drift", "profile", "--model", str(bundle), "--processed", str(processed)]
    result = runner.invoke(app, [*args, "--max-images", "40", "--variant", "fp32"])
    assert result.exit_code == 0, result.output
    assert "40 val images" in result.output
    profile = read_profile(read_bundle(bundle))
    assert profile is not None
    assert len(profile.observations) == 40
    assert not list(bundle.glob(".*tmp"))  # written atomically: no temporary left behind


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split", "train"], "train_images.npy not found"),
        (["--max-images", "0"], "--max-images must be at least 1"),
        (["--variant", "fp16"], "unknown model variant"),
    ],
)
def test_cli_profile_errors_say_what_to_fix(
    processed: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    bundle = write_bundle(tmp_path / "b")
    args = ["drift", "profile", "--model", str(bundle), "--processed", str(processed), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (bundle / REFERENCE_FILE).exists()
