"""The model bundle: one folder holding everything needed to serve or evaluate a model.

    bundle.json        metadata: name, version, architecture, preprocessing, temperature,
                       open-set threshold, metrics, and the run/commit/data version behind it
    weights.safetensors  PyTorch weights (no pickle)
    classes.json       class names in label order
    catalog.json       species facts (no prose descriptions in committed bundles)
    typechart.json     18x18 type multipliers
    config.yaml        the resolved training config
    model.onnx ...     exported variants, added by `pokedex export`
    embeddings.json    2-D projection of test-split features, added by `pokedex evaluate
                       --embeddings` (the UI's embedding map)
    centroids.npy      (classes, features) float16 unit mean embedding per species, added by
                       `pokedex evaluate` (the cosine open-set score)

No torch import here: serving reads bundles too.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pokedex.core.preprocess import PreprocessSpec
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, write_json_atomic

if TYPE_CHECKING:
    from pokedex.dex.catalog import Species

FORMAT_VERSION = 1
REQUIRED = ("bundle.json", "classes.json")
EMBEDDINGS_FILE = "embeddings.json"
CENTROIDS_FILE = "centroids.npy"
CATALOG_FILE = "catalog.json"


@dataclass
class Bundle:
    """A model bundle read from disk."""

    path: Path
    meta: dict[str, Any]
    classes: list[str]
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)

    @property
    def name(self) -> str:
        """Model name and version, e.g. ``pokedex-resnet18@3f2a1c``."""
        return f"{self.meta.get('name', 'pokedex')}@{self.meta.get('version', 'unknown')}"

    @property
    def temperature(self) -> float:
        """Softmax temperature fitted on val (1.0 until `pokedex evaluate` calibrates)."""
        return float(self.meta.get("temperature", 1.0))

    @property
    def flip_average(self) -> bool:
        """Whether the model answers with the mean of each image and its mirror image
        (`pokedex export --flip-average`; the net reads the same ``net.flip_average``)."""
        return bool(self.meta.get("net", {}).get("flip_average", False))

    def file(self, name: str) -> Path:
        """Path of a file inside the bundle; PokedexError when it is missing."""
        path = self.path / name
        if not path.is_file():
            raise PokedexError(f"model bundle {self.path} has no {name}")
        return path


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle folder and validate its metadata."""
    path = Path(path)
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        raise PokedexError(f"{path} is not a model bundle: missing {', '.join(missing)}")
    try:
        meta = json.loads((path / "bundle.json").read_text())
        classes = json.loads((path / "classes.json").read_text())
        spec = PreprocessSpec.from_dict(meta["preprocess"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PokedexError(f"{path}: invalid bundle metadata: {exc}") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise PokedexError(f"{path}: bundle format {meta.get('format_version')} is not supported")
    if meta.get("num_classes") != len(classes):
        raise PokedexError(
            f"{path}: bundle.json says {meta.get('num_classes')} classes, "
            f"classes.json has {len(classes)}"
        )
    return Bundle(path=path, meta=meta, classes=classes, preprocess=spec)


def write_bundle(
    out: Path,
    *,
    meta: dict[str, Any],
    classes: list[str],
    weights: Path,
    processed: Path | None = None,
    config_yaml: str | None = None,
) -> Bundle:
    """Write a bundle folder atomically. ``meta`` must hold ``name``, ``version``, ``net`` and
    ``preprocess``; the catalog and type chart are taken from the processed data folder.
    """
    meta = {"format_version": FORMAT_VERSION, "num_classes": len(classes), **meta}
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        shutil.copyfile(weights, tmp / "weights.safetensors")
        write_json_atomic(tmp / "classes.json", classes)
        if processed is not None and (processed / "catalog.json").is_file():
            from pokedex.dex.catalog import load_catalog, save_catalog

            save_catalog(
                load_catalog(processed / "catalog.json"),
                tmp / CATALOG_FILE,
                with_descriptions=False,
            )
            shutil.copyfile(processed / "typechart.json", tmp / "typechart.json")
        if config_yaml is not None:
            (tmp / "config.yaml").write_text(config_yaml)
        write_json_atomic(tmp / "bundle.json", meta)
    return read_bundle(out)


def update_meta(bundle: Bundle, **changes: Any) -> Bundle:
    """Atomically merge ``changes`` into a bundle's metadata."""
    meta = {**bundle.meta, **changes}
    write_json_atomic(bundle.path / "bundle.json", meta)
    return read_bundle(bundle.path)


def read_catalog(bundle: Bundle) -> dict[str, Species]:
    """The species facts the bundle carries, by name; empty when it carries none."""
    from pokedex.dex.catalog import load_catalog

    path = bundle.path / CATALOG_FILE
    return load_catalog(path) if path.is_file() else {}


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in the .npy format (no pickle), for an atomic write."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def read_centroids(bundle: Bundle) -> np.ndarray | None:
    """The bundle's class centroids ``(classes, D)``, or None when it has none."""
    path = bundle.path / CENTROIDS_FILE
    if not path.is_file():
        return None
    try:
        centroids = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise PokedexError(f"{path}: not a .npy array: {exc}") from exc
    if centroids.ndim != 2 or len(centroids) != len(bundle.classes):
        raise PokedexError(
            f"{path}: shape {centroids.shape}, expected ({len(bundle.classes)}, features)"
        )
    return centroids
