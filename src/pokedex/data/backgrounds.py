"""Real photographs to put behind the sprites' alpha: a bank of square tiles built once.

A sprite model meets photos in use, and the biggest difference between the two is what lies
around the Pokémon. `pokedex data backgrounds` cuts square tiles at many scales out of freely
licensed photographs that Debian and PyPI packages install (never out of the real-photo
validation set) and writes them as one array plus a manifest of every source and its licence:

    data/backgrounds/tiles.npy      (N, T, T, 3) uint8
    data/backgrounds/manifest.json  {tile_size, seed, sources: [{file, sha256, licence, ...}]}
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pokedex.errors import PokedexError
from pokedex.io import atomic_path

log = logging.getLogger(__name__)

TILES_FILE = "tiles.npy"
MANIFEST_FILE = "manifest.json"
TILE = 96  # side of a stored tile; the augmentation resamples it to the input size


@dataclass(frozen=True)
class PhotoSource:
    """A set of photographs a package installs, with the licence its copyright file states."""

    name: str
    install: str  # how a user gets it
    licence: str
    files: tuple[str, ...]  # names inside the package's folder

    def folder(self) -> Path | None:
        """Where the package put its files on this machine, or None."""
        if self.name == "scikit-image":
            spec = importlib.util.find_spec("skimage")
            return Path(spec.origin).parent / "data" if spec and spec.origin else None
        return Path("/usr/share/backgrounds/mate/nature")


# Only photographs: abstract wallpapers look like nothing a Pokédex user photographs.
SOURCES = (
    PhotoSource(
        "mate-backgrounds",
        "apt-get install mate-backgrounds (Debian)",
        "GPL-2+ (debian/copyright of mate-backgrounds 1.26)",
        (
            "Aqua.jpg",
            "Blinds.jpg",
            "Dune.jpg",
            "FreshFlower.jpg",
            "Garden.jpg",
            "GreenMeadow.jpg",
            "LadyBird.jpg",
            "RainDrops.jpg",
            "Storm.jpg",
            "TwoWings.jpg",
            "Wood.jpg",
            "YellowFlower.jpg",
        ),
    ),
    PhotoSource(
        "scikit-image",
        "pip install scikit-image (the `train` extra)",
        "public domain or CC0, per skimage.data's docstrings",
        (
            "astronaut.png",
            "chelsea.png",
            "coffee.png",
            "rocket.jpg",
            "hubble_deep_field.jpg",
            "brick.png",
            "grass.png",
            "gravel.png",
        ),
    ),
)


def _tiles_of(image: Image.Image, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` square crops with sides log-uniform between 1/8 and all of the short side."""
    image = image.convert("RGB")
    short = min(image.size)
    out = []
    for _ in range(count):
        side = int(short * np.exp(rng.uniform(np.log(1 / 8), 0)))
        side = max(side, 16)
        x = int(rng.integers(0, image.width - side + 1))
        y = int(rng.integers(0, image.height - side + 1))
        tile = image.crop((x, y, x + side, y + side)).resize((TILE, TILE), Image.Resampling.BOX)
        out.append(np.asarray(tile, dtype=np.uint8))
    return out


def build_backgrounds(
    out: Path,
    *,
    extra: list[Path] | None = None,
    tiles_per_image: int = 48,
    seed: int = 0,
) -> dict:
    """Cut the tiles out of every source found here (plus ``extra`` image files or folders).

    Sources that are not installed are listed as missing in the manifest; none found at all is
    an error that says what to install.
    """
    rng = np.random.default_rng(seed)
    found: list[tuple[Path, str, str]] = []  # (file, source, licence)
    missing: list[str] = []
    for src in SOURCES:
        folder = src.folder()
        for name in src.files:
            path = folder / name if folder else None
            if path is not None and path.is_file():
                found.append((path, src.name, src.licence))
            else:
                missing.append(f"{src.name}/{name}")
    for item in extra or []:
        files = sorted(p for p in Path(item).rglob("*") if p.is_file()) if item.is_dir() else [item]
        found += [(p, "extra", "as stated by its owner") for p in files]
    if not found:
        raise PokedexError(
            "no background photographs found: "
            + "; ".join(s.install for s in SOURCES)
            + ", or pass --extra FOLDER"
        )
    tiles: list[np.ndarray] = []
    sources = []
    for path, source, licence in found:
        data = path.read_bytes()
        try:
            with Image.open(path) as image:
                image.load()
                if min(image.size) < 32:
                    raise ValueError("smaller than 32 px")
                cut = _tiles_of(image, tiles_per_image, rng)
        except Exception as exc:  # a broken extra file is skipped and recorded
            sources.append({"file": path.name, "source": source, "skipped": str(exc)})
            continue
        tiles += cut
        sources.append(
            {
                "file": path.name,
                "source": source,
                "licence": licence,
                "sha256": hashlib.sha256(data).hexdigest(),
                "tiles": len(cut),
            }
        )
    if not tiles:
        raise PokedexError("no readable background photographs among the sources found")
    manifest = {
        "tile_size": TILE,
        "tiles": len(tiles),
        "seed": seed,
        "tiles_per_image": tiles_per_image,
        "sources": sources,
        "missing": missing,
    }
    with atomic_path(Path(out)) as tmp:
        tmp.mkdir()
        np.save(tmp / TILES_FILE, np.stack(tiles))
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%d background tiles from %d photographs in %s", len(tiles), len(found), out)
    return manifest


def load_tiles(folder: Path) -> np.ndarray:
    """The tile bank ``(N, T, T, 3)`` uint8 of a backgrounds folder, or a clear error."""
    path = Path(folder) / TILES_FILE
    if not path.is_file():
        raise PokedexError(
            f"{path} not found: run `pokedex data backgrounds` (or set augment.background_photo=0)"
        )
    tiles = np.load(path, allow_pickle=False)
    if tiles.ndim != 4 or tiles.shape[-1] != 3 or tiles.dtype != np.uint8 or not len(tiles):
        raise PokedexError(f"{path}: expected (N, T, T, 3) uint8 tiles, got {tiles.shape}")
    return tiles
