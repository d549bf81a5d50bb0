"""Folder-per-species image sets outside the packed dataset (e.g. the real-photo validation zip)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from pokedex.core.preprocess import CANVAS, decode, fit_square, to_rgba
from pokedex.errors import PokedexError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _labelled_files(source: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(species, name, bytes)`` for every image in a zip or folder laid out ``species/file``."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                yield path.parent.name, path.name, path.read_bytes()
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                p = PurePosixPath(info.filename)
                if not info.is_dir() and p.suffix.lower() in IMAGE_SUFFIXES and len(p.parts) >= 2:
                    yield p.parent.name, p.name, zf.read(info)
    else:
        raise PokedexError(f"{source}: expected a folder or a zip of species sub-folders")


def load_labelled_canvases(
    source: Path, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode a labelled image set into canvases ``(N, 128, 128, 4)``, labels ``(N,)``, names.

    Images of species outside ``classes`` and undecodable files are skipped.
    """
    index = {c: i for i, c in enumerate(classes)}
    canvases, labels, names = [], [], []
    for species, name, data in _labelled_files(Path(source)):
        if species not in index:
            continue
        try:
            canvases.append(fit_square(to_rgba(decode(data)), CANVAS))
        except Exception:  # a broken validation image is skipped, not fatal
            continue
        labels.append(index[species])
        names.append(f"{species}/{name}")
    if not canvases:
        raise PokedexError(f"{source}: no readable images of known species")
    return np.stack(canvases), np.asarray(labels, dtype=np.int64), names
