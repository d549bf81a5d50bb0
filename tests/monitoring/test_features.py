"""Image statistics: what each one measures, and that the server and the profile agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pokedex.core.predictor import OnnxPredictor
from pokedex.monitoring.features import IMAGE_FEATURES, canvas_stats, embedding_summary
from pokedex.monitoring.profile import observe
from pokedex.serving.images import prepare
from tests.conftest import encode, sprite
from tests.monitoring.conftest import blurred, canvases, dark, photo_background

WHITE = (255, 255, 255)


def _stats(canvas: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in canvas_stats(canvas[None], WHITE).items()}


def test_a_transparent_canvas_is_the_blank_background() -> None:
    stats = _stats(np.zeros((128, 128, 4), dtype=np.uint8))
    assert stats == pytest.approx(
        {"brightness": 1.0, "contrast": 0.0, "colourfulness": 0.0, "sharpness": 0.0,
         "alpha_coverage": 0.0}, abs=1e-6
    )  # fmt: skip


def test_each_statistic_moves_with_what_it_names() -> None:
    base = canvases([7])[0]
    plain = _stats(base)
    assert _stats(canvases([7], dark)[0])["brightness"] < plain["brightness"] - 0.1
    assert _stats(canvases([7], blurred)[0])["sharpness"] < 0.7 * plain["sharpness"]
    assert _stats(canvases([7], photo_background)[0])["alpha_coverage"] == 1.0
    grey = base.copy()
    grey[..., :3] = grey[..., :3].mean(axis=-1, keepdims=True).astype(np.uint8)
    assert _stats(grey)["colourfulness"] < 0.05 < plain["colourfulness"]
    assert 0.0 < plain["alpha_coverage"] < 1.0


def test_statistics_follow_their_textbook_definitions() -> None:
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (3, 32, 32, 4), dtype=np.uint8)
    a = batch[..., 3:].astype(np.float64) / 255
    rgb = (batch[..., :3] * a + 255 * (1 - a)) / 255  # straight alpha over white, float64
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    rg, yb = r - g, (r + g) / 2 - b
    lap = 4 * luma[:, 1:-1, 1:-1] - sum(
        luma[:, i : i + 30, j : j + 30] for i, j in ((0, 1), (2, 1), (1, 0), (1, 2))
    )
    expected = {
        "brightness": luma.mean(axis=(1, 2)),
        "contrast": luma.std(axis=(1, 2)),
        "colourfulness": np.hypot(rg.std(axis=(1, 2)), yb.std(axis=(1, 2)))
        + 0.3 * np.hypot(rg.mean(axis=(1, 2)), yb.mean(axis=(1, 2))),
        "sharpness": np.abs(lap).mean(axis=(1, 2)),
        "alpha_coverage": (batch[..., 3] >= 128).mean(axis=(1, 2)),
    }
    stats = canvas_stats(batch, WHITE)
    for name, values in expected.items():
        assert stats[name] == pytest.approx(values, rel=1e-5, abs=1e-6), name


def test_embedding_summary_shapes() -> None:
    features = np.arange(24, dtype=np.float32).reshape(2, 12)  # (N, D)
    summary = embedding_summary(features)
    assert summary["embedding_head"].shape == (2, 8)
    np.testing.assert_allclose(summary["embedding_norm"], np.linalg.norm(features, axis=1))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_served_statistics_equal_the_profile_path(profiled_bundle: Path, fmt: str) -> None:
    # one definition: an upload measured by the server and the same image packed as a canvas
    # and measured by the profile builder give the same numbers (lossless formats)
    predictor = OnnxPredictor(profiled_bundle, variant="fp32", threads=1)
    image = sprite(11, size=(96, 120))  # not square: the canvas padding is part of it
    served = prepare(encode(image, fmt), predictor, max_pixels=10**7)
    profiled = observe(predictor, canvases([11], lambda im, s: image))
    for name in IMAGE_FEATURES:
        assert getattr(served.stats, name) == pytest.approx(float(profiled.values[name][0]))
    assert (served.stats.width, served.stats.height) == (96, 120)
