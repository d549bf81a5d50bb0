"""Shared fixtures: a small synthetic dataset laid out like the real Kaggle archive, that
dataset prepared (``processed``), the smoke preset's bundle trained on it (``smoke_bundle``) and
a labelled photo folder made from it.

``<root>/pokemon-dataset-1000/dataset/<species>/<species>_<i>.webp`` plus
``<root>/pokemon-dataset-1000/metadata.csv``; every sprite is distinct, seeded, 128x128 RGBA
with a transparent background (random coloured shapes), a few are plain RGB.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pokedex.data.prepare import prepare

pytest_plugins = ["tests.figures"]  # the `figure` fixture of the reliability and fuzz tests

# sorted, and with hyphens like the real folder names
SPECIES = (
    "abra",
    "bulbasaur",
    "charmander",
    "ditto",
    "eevee",
    "gengar",
    "ho-oh",
    "mr-mime",
    "pikachu",
    "porygon-z",
    "snorlax",
    "zubat",
)
STATS = ("hp", "attack", "defense", "special-attack", "special-defense", "speed")
METADATA_COLUMNS = ("label", "image_path", *STATS)
SIDE = 128


@functools.cache
def _sprite_pixels(seed: int, rgb: bool, width: int, height: int) -> bytes:
    rng = np.random.default_rng(seed)
    background = (*(int(v) for v in rng.integers(160, 256, 3)), 255) if rgb else (0, 0, 0, 0)
    image = Image.new("RGBA", (width, height), background)
    draw = ImageDraw.Draw(image)
    # several large shapes, so that two sprites are far apart in dHash (min ~19 of 256 bits)
    for _ in range(int(rng.integers(4, 8))):
        x0 = int(rng.integers(8, max(9, width - 48)))
        y0 = int(rng.integers(8, max(9, height - 48)))
        x1 = min(width - 8, x0 + int(rng.integers(16, 64)))
        y1 = min(height - 8, y0 + int(rng.integers(16, 64)))
        colour = (*(int(v) for v in rng.integers(0, 256, 3)), 255)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    return image.tobytes()


def sprite(seed: int, *, rgb: bool = False, size: tuple[int, int] = (SIDE, SIDE)) -> Image.Image:
    """A seeded sprite: random shapes on transparency (RGBA), or on a light opaque colour (RGB)."""
    image = Image.frombytes("RGBA", size, _sprite_pixels(seed, rgb, *size))
    return image.convert("RGB") if rgb else image


def encode(image: Image.Image, fmt: str = "WEBP", **params: object) -> bytes:
    """Image bytes; WebP is lossless so that pixels survive the round trip exactly."""
    buf = io.BytesIO()
    if fmt == "WEBP":
        params = {"lossless": True, **params}
    image.save(buf, fmt, **params)
    return buf.getvalue()


@functools.cache
def _sprite_webp(seed: int, rgb: bool) -> bytes:
    return encode(sprite(seed, rgb=rgb))


@dataclass
class SyntheticRaw:
    """Where a synthetic raw dataset lives and what it holds."""

    raw: Path  # what `pokedex data prepare --raw` is given
    dataset: Path  # the folder of species folders
    metadata: Path  # metadata.csv
    files: list[str]  # "<species>/<species>_<i>.webp", relative to ``dataset``
    rgb_files: list[str]  # the subset saved as plain RGB

    def path(self, rel: str) -> Path:
        """Absolute path of a file given relative to the dataset folder."""
        return self.dataset / rel

    def read_rows(self) -> list[dict[str, str]]:
        """The rows of metadata.csv."""
        with open(self.metadata, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_rows(self, rows: list[dict[str, str]]) -> None:
        """Replace metadata.csv with ``rows``."""
        with open(self.metadata, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=METADATA_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def row(self, rel: str, label: str | None = None) -> dict[str, str]:
        """A metadata row for ``rel`` (stats are made up), labelled by its folder by default."""
        species = rel.split("/")[0]
        stats = {k: str(40 + 7 * i + len(species)) for i, k in enumerate(STATS)}
        return {"label": label or species, "image_path": f"dataset/{rel}", **stats}

    def add(self, rel: str, data: bytes, *, listed: bool = True) -> Path:
        """Write an extra file, with its metadata row unless ``listed`` is False."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if listed:
            self.write_rows([*self.read_rows(), self.row(rel)])
        return target


def write_raw(
    root: Path,
    *,
    species: int = len(SPECIES),
    per_species: int = 8,
    seed: int = 0,
    order_seed: int | None = None,
) -> SyntheticRaw:
    """Write a synthetic raw dataset under ``root``; ``order_seed`` shuffles creation order."""
    names = SPECIES[:species]
    dataset = root / "pokemon-dataset-1000" / "dataset"
    files, rgb_files, pixels = [], [], {}
    for s, name in enumerate(names):
        for i in range(1, per_species + 1):
            rel = f"{name}/{name}_{i}.webp"
            rgb = i == per_species and s % 3 == 0  # a few plain RGB sprites
            pixels[rel] = _sprite_webp(seed * 1_000_000 + s * 1000 + i, rgb)
            files.append(rel)
            if rgb:
                rgb_files.append(rel)
    order = list(files)
    if order_seed is not None:
        random.Random(order_seed).shuffle(order)
    for rel in order:
        (dataset / rel).parent.mkdir(parents=True, exist_ok=True)
        (dataset / rel).write_bytes(pixels[rel])
    raw = SyntheticRaw(root, dataset, dataset.parent / "metadata.csv", files, rgb_files)
    raw.write_rows([raw.row(rel) for rel in order])
    return raw


MakeRaw = Callable[..., SyntheticRaw]


@pytest.fixture
def make_raw(tmp_path: Path) -> MakeRaw:
    """Factory: ``make_raw(name="raw", **write_raw_options)`` -> a fresh dataset in tmp_path."""

    def make(
        name: str = "raw",
        *,
        species: int = len(SPECIES),
        per_species: int = 8,
        seed: int = 0,
        order_seed: int | None = None,
    ) -> SyntheticRaw:
        return write_raw(
            tmp_path / name,
            species=species,
            per_species=per_species,
            seed=seed,
            order_seed=order_seed,
        )

    return make


@pytest.fixture(scope="session")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 species x 8 synthetic sprites, validated, split and packed by the real `prepare`
    (training, the nets and the training benchmark share it)."""
    root = tmp_path_factory.mktemp("train-data")
    write_raw(root / "raw", per_species=8)
    return prepare(root / "raw", root / "processed", workers=1).out


def smoke_overrides(processed: Path, out: Path, *extra: str) -> list[str]:
    """The smoke preset pointed at the test data and a private output folder."""
    return ["experiment=smoke", f"data.root={processed}", f"output_dir={out}", *extra]


@pytest.fixture(scope="session")
def smoke_bundle(processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained by the smoke preset on the synthetic data."""
    from pokedex.jobs.train import compose_config, train

    out = tmp_path_factory.mktemp("smoke-run")
    return train(compose_config(smoke_overrides(processed, out))).bundle.path


def write_photo_folder(processed: Path, root: Path) -> Path:
    """A labelled photo set laid out ``species/file`` from the test split's canvases."""
    classes = json.loads((processed / "classes.json").read_text())
    images = np.load(processed / "test_images.npy")
    labels = np.load(processed / "test_labels.npy")
    for i, (canvas, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas[..., :3]).save(folder / f"{i}.jpg", quality=90)
    return root
