"""`pokedex data gallery`: one small picture per species, picked from the user's own data.

data/processed/gallery/ (never committed: the pictures are the dataset's):
    <species>.webp    the species' most typical image, THUMBNAIL px square, transparency kept
    manifest.json     {"version", "size", "species": {name: {"file", "source", "sha256"}}}

The most typical image is the medoid of the species' images: the one closest, on average, to
all the others in a coarse thumbnail, so an odd pose or a mislabelled picture is never chosen.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pokedex.errors import PokedexError
from pokedex.io import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

GALLERY_DIR = "gallery"
MANIFEST = "manifest.json"
VERSION = 1
THUMBNAIL = 96
MAX_CANDIDATES = 64  # images compared per species: the medoid of 64 is typical enough
_COARSE = 32  # side of the subsampled picture the medoid is computed on
_SAFE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.webp")


@dataclass(frozen=True)
class GalleryEntry:
    """One species' picture: the file in the gallery folder and where it came from."""

    file: str
    source: str
    sha256: str


def build_gallery(processed: Path, out: Path | None = None, size: int = THUMBNAIL) -> Path:
    """Write one ``size`` px WebP per species of ``processed`` into ``out`` (replaced whole)."""
    start = time.perf_counter()
    processed = Path(processed)
    out = Path(out) if out is not None else processed / GALLERY_DIR
    candidates = _candidates(processed)
    arrays: dict[str, np.ndarray] = {}
    species: dict[str, dict[str, str]] = {}
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for name, picks in candidates.items():
            images = np.stack([_canvas(processed, arrays, split, i) for split, i, _ in picks])
            best = _medoid(images)  # images: (n, 128, 128, 4) uint8
            data = _thumbnail(images[best], size)
            entry = GalleryEntry(f"{name}.webp", picks[best][2], hashlib.sha256(data).hexdigest())
            (tmp / entry.file).write_bytes(data)
            species[name] = asdict(entry)
        write_json_atomic(tmp / MANIFEST, {"version": VERSION, "size": size, "species": species})
    total = sum(f.stat().st_size for f in out.iterdir())
    log.info(
        "gallery: %d species, %.1f MB, in %.1f s -> %s",
        len(species),
        total / 1e6,
        time.perf_counter() - start,
        out,
    )
    return out


def read_gallery(folder: Path) -> dict[str, GalleryEntry]:
    """Species name -> its picture, from a gallery's manifest (checked: plain file names only)."""
    path = Path(folder) / MANIFEST
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PokedexError(f"no species gallery manifest at {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PokedexError(f"cannot read species gallery manifest {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise PokedexError(f"{path} is not a version {VERSION} gallery manifest")
    entries = {}
    for name, item in (data.get("species") or {}).items():
        try:
            entry = GalleryEntry(str(item["file"]), str(item["source"]), str(item["sha256"]))
        except (KeyError, TypeError) as exc:
            raise PokedexError(f"{path}: species {name!r} lacks {exc}") from exc
        if not _SAFE_FILE.fullmatch(entry.file):
            raise PokedexError(f"{path}: species {name!r} names an unsafe file {entry.file!r}")
        entries[name] = entry
    return entries


def _candidates(processed: Path) -> dict[str, list[tuple[str, int, str]]]:
    """Species -> up to MAX_CANDIDATES (split, row in that split's array, source path)."""
    try:
        classes = json.loads((processed / "classes.json").read_text(encoding="utf-8"))
        with open(processed / "manifest.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as exc:
        raise PokedexError(f"{exc.filename} is missing: run `pokedex data prepare` first") from exc
    found: dict[str, list[tuple[str, int, str]]] = {name: [] for name in classes}
    position: dict[str, int] = {}
    for row in rows:
        # prepare packs each split's images in manifest order: the k-th row of a split is
        # row k of {split}_images.npy
        split = row["split"]
        index = position[split] = position.get(split, -1) + 1
        if row.get("source") == "feedback":
            continue  # users' kept photos train the model but are never shown to others
        found.setdefault(row["species"], []).append((split, index, row["path"]))
    missing = [name for name, picks in found.items() if not picks]
    if missing:
        raise PokedexError(f"{processed}/manifest.csv has no image of {', '.join(missing[:5])}")
    for name, picks in found.items():
        if len(picks) > MAX_CANDIDATES:
            keep = np.linspace(0, len(picks) - 1, MAX_CANDIDATES).astype(int)
            found[name] = [picks[i] for i in keep]
    return found


def _canvas(processed: Path, arrays: dict[str, np.ndarray], split: str, index: int) -> np.ndarray:
    """One packed (128, 128, 4) canvas; each split's array is memory-mapped once."""
    if split not in arrays:
        path = processed / f"{split}_images.npy"
        if not path.is_file():
            raise PokedexError(f"{path} is missing: run `pokedex data prepare` first")
        arrays[split] = np.load(path, mmap_mode="r")
    return np.asarray(arrays[split][index])


def _medoid(images: np.ndarray) -> int:
    """Index of the image with the least total distance to the others, on white, coarsely."""
    step = images.shape[1] // _COARSE
    pixels = images[:, ::step, ::step].astype(np.float32) / 255.0  # (n, 32, 32, 4)
    alpha = pixels[..., 3:4]
    coarse = (pixels[..., :3] * alpha + (1.0 - alpha)).reshape(len(images), -1)
    distances = np.linalg.norm(coarse[:, None, :] - coarse[None, :, :], axis=-1)  # (n, n)
    return int(distances.sum(axis=1).argmin())


def _thumbnail(canvas: np.ndarray, size: int) -> bytes:
    """A ``size`` px square WebP of one RGBA canvas, transparency kept."""
    image = Image.fromarray(canvas).resize((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=80)
    return buf.getvalue()
