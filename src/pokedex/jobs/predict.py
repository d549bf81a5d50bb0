"""`pokedex predict`: files or folders in, one JSON record per image out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.core.bundle import Bundle, read_catalog
from pokedex.core.predictor import softmax
from pokedex.core.preprocess import decode, image_to_input
from pokedex.errors import PokedexError
from pokedex.store.registry import resolve_model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


@dataclass
class TorchPredictor:
    """Predicts with the bundle's PyTorch weights: the reference the ONNX variants must match."""

    bundle: Bundle

    def __post_init__(self) -> None:
        from pokedex.models.net import load_net

        self.net = load_net(self.bundle)
        self.types = _types_of(self.bundle)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Species logits ``(N, C)`` for preprocessed inputs ``(N, 3, H, W)``."""
        from pokedex.evaluation.inference import predict_logits

        return predict_logits(self.net, inputs)

    def predict_image(self, data: bytes, top_k: int = 5) -> dict[str, Any]:
        """Top-k species with calibrated probabilities, and the top-1 species' types."""
        x = image_to_input(decode(data), self.bundle.preprocess)
        probs = softmax(self.logits(x), self.bundle.temperature)[0]
        top = np.argsort(-probs)[:top_k]
        species = [
            {"name": self.bundle.classes[i], "probability": round(float(probs[i]), 6)} for i in top
        ]
        return {"species": species, "types": self.types.get(species[0]["name"], [])}


def _types_of(bundle: Bundle) -> dict[str, list[str]]:
    return {name: list(s.types) for name, s in read_catalog(bundle).items()}


def iter_images(paths: list[Path]) -> Iterator[Path]:
    """The image files among ``paths``, folders expanded recursively in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            yield path
        else:
            raise PokedexError(f"{path}: no such file or folder")


def predict_paths(paths: list[Path], model: str | None, top_k: int) -> Iterator[dict[str, Any]]:
    """One record per image; an unreadable image yields a record with an ``error``."""
    if not 1 <= top_k <= 20:
        raise PokedexError(f"--top-k must be between 1 and 20, got {top_k}")
    predictor = TorchPredictor(resolve_model(model))
    for path in iter_images(paths):
        try:
            record = predictor.predict_image(path.read_bytes(), top_k)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's decode errors
            yield {"path": str(path), "error": f"cannot read image: {exc}"}
            continue
        yield {"path": str(path), **record}


def format_record(record: dict[str, Any], as_json: bool) -> str:
    """A JSON line, or a short human-readable line."""
    if as_json:
        return json.dumps(record, ensure_ascii=False)
    if "error" in record:
        return f"{record['path']}: {record['error']}"
    best = record["species"][0]
    types = "/".join(record["types"]) or "?"
    return f"{record['path']}: {best['name']} ({best['probability']:.1%}, {types})"
