"""Sprites in and out of distribution, and a tiny served bundle with a reference profile.

The reference is built the way a release builds it: `build_profile` over the val split of a
processed folder, through the ONNX predictor of the bundle (tests/serving/conftest.py's
hand-built graph, which runs in milliseconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pokedex.core.bundle import read_bundle
from pokedex.core.preprocess import to_canvas
from pokedex.monitoring.profile import build_profile, write_profile
from tests.conftest import sprite
from tests.serving.conftest import write_bundle

REFERENCE_IMAGES = 200
WINDOW = 60  # served predictions per check: comfortably above MIN_SAMPLES
Shift = Callable[[Image.Image, int], Image.Image]


def unchanged(image: Image.Image, seed: int) -> Image.Image:
    """In distribution: the sprite as it is."""
    return image


def dark(image: Image.Image, seed: int) -> Image.Image:
    """An underexposed picture: colour values x0.35, alpha kept."""
    a = np.asarray(image).copy()
    a[..., :3] = (a[..., :3] * 0.35).astype(np.uint8)
    return Image.fromarray(a, "RGBA")


def blurred(image: Image.Image, seed: int) -> Image.Image:
    """An out-of-focus picture (blurred premultiplied, so edges do not darken)."""
    return image.convert("RGBa").filter(ImageFilter.GaussianBlur(2)).convert("RGBA")


def photo_background(image: Image.Image, seed: int) -> Image.Image:
    """The sprite in front of an opaque, cluttered, photo-like background."""
    rng = np.random.default_rng(seed)
    blotches = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    scene = Image.fromarray(blotches).resize(image.size, Image.Resampling.BICUBIC).convert("RGBA")
    scene.alpha_composite(image)
    return scene


def images(seeds: Iterable[int], shift: Shift = unchanged) -> list[Image.Image]:
    """Seeded synthetic sprites, shifted."""
    return [shift(sprite(s), s) for s in seeds]


def canvases(seeds: Iterable[int], shift: Shift = unchanged) -> np.ndarray:
    """``(N, 128, 128, 4)`` canvases of shifted sprites, as the preprocessing builds them."""
    return np.stack([to_canvas(im) for im in images(seeds, shift)])


def write_processed(root: Path, seeds: Iterable[int]) -> Path:
    """A processed folder whose val split holds the sprites of ``seeds``."""
    root.mkdir(parents=True)
    val = canvases(seeds)
    np.save(root / "val_images.npy", val)
    np.save(root / "val_labels.npy", np.zeros(len(val), dtype=np.int16))
    (root / "summary.json").write_text(json.dumps({"data_version": "sprites01"}))
    return root


@pytest.fixture(scope="session")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Processed data with a val split of in-distribution sprites."""
    return write_processed(tmp_path_factory.mktemp("data") / "processed", range(REFERENCE_IMAGES))


@pytest.fixture(scope="session")
def profiled_bundle(tmp_path_factory: pytest.TempPathFactory, processed: Path) -> Path:
    """A tiny bundle with its drift reference built from ``processed`` (read-only)."""
    path = write_bundle(tmp_path_factory.mktemp("models") / "profiled")
    bundle = read_bundle(path)
    write_profile(bundle, build_profile(bundle, processed, variant="fp32"))
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read POKEDEX_* variables: tests must not see the developer's."""
    import os

    for key in list(os.environ):
        if key.startswith("POKEDEX_"):
            monkeypatch.delenv(key)
