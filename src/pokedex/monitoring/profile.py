"""The reference profile: what the served model sees and says on held-out data, kept in the bundle.

`pokedex drift profile` runs a split of the processed data through the path a served image takes
(canvas -> THE preprocessing -> ONNX Runtime predictor) and stores each image's features in
``drift_reference.json``: the sample the drift tests compare served predictions with. A release
step, after `pokedex export` (it needs the ONNX model) and after calibration (confidence is the
calibrated probability).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.core.bundle import Bundle
from pokedex.core.preprocess import canvases_to_input
from pokedex.errors import PokedexError
from pokedex.io import write_bytes_atomic
from pokedex.monitoring.drift import SCALARS, Observations
from pokedex.monitoring.features import canvas_stats, embedding_summary

log = logging.getLogger(__name__)

REFERENCE_FILE = "drift_reference.json"
FORMAT_VERSION = 1
MAX_IMAGES = 2000  # enough for tight KS/PSI estimates; keeps the file a few hundred KB
_DIGITS = 6  # significant digits stored


@dataclass
class Profile:
    """A reference sample of feature values, and where it came from."""

    model: str  # the bundle's name@version it was built with
    split: str
    data_version: str | None
    variant: str
    created_at: str
    observations: Observations

    @property
    def confidence_mean(self) -> float:
        """Mean top-1 probability on the reference images."""
        return float(self.observations.values["confidence"].mean())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, values rounded to a few significant digits."""
        obs = self.observations
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "split": self.split,
            "data_version": self.data_version,
            "variant": self.variant,
            "created_at": self.created_at,
            "images": len(obs),
            "features": {name: _rounded(obs.values[name]) for name in SCALARS},
            "embedding_head": [_rounded(row) for row in obs.embedding],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`; KeyError/ValueError/TypeError when malformed."""
        if data["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format {data['format_version']} is not supported")
        values = {name: np.asarray(data["features"][name], dtype=np.float64) for name in SCALARS}
        embedding = np.asarray(data["embedding_head"], dtype=np.float64)
        if embedding.ndim != 2 or any(len(v) != len(embedding) for v in values.values()):
            raise ValueError("feature lists of different lengths")
        return cls(
            model=str(data["model"]),
            split=str(data["split"]),
            data_version=data.get("data_version"),
            variant=str(data["variant"]),
            created_at=str(data["created_at"]),
            observations=Observations(values=values, embedding=embedding),
        )


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.{_DIGITS}g}") for v in values]


def observe(predictor: Any, canvases: np.ndarray, batch_size: int = 64) -> Observations:
    """Features of RGBA canvases ``(N, S, S, 4)`` through an :class:`OnnxPredictor`."""
    spec = predictor.spec
    parts: list[dict[str, np.ndarray]] = []
    for i in range(0, len(canvases), batch_size):
        batch = np.asarray(canvases[i : i + batch_size])  # (B, S, S, 4)
        out = predictor.run(canvases_to_input(batch, spec))
        parts.append(
            {
                **canvas_stats(batch, spec.background),
                "confidence": out.probabilities.max(axis=1).astype(np.float64),
                **embedding_summary(out.features),
            }
        )
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return Observations(
        values={name: merged[name] for name in SCALARS}, embedding=merged["embedding_head"]
    )


def build_profile(
    bundle: Bundle,
    processed: Path,
    *,
    split: str = "val",
    max_images: int = MAX_IMAGES,
    variant: str = "auto",
    seed: int = 0,
) -> Profile:
    """Observe up to ``max_images`` seeded images of a processed split with the served model."""
    from pokedex.core.predictor import OnnxPredictor
    from pokedex.provenance import data_version

    if max_images < 1:
        raise PokedexError(f"--max-images must be at least 1, not {max_images}")
    predictor = OnnxPredictor(bundle, variant=variant)
    canvases = _sample(Path(processed), split, max_images, seed)
    log.info("profiling %s on %d %s images", bundle.name, len(canvases), split)
    return Profile(
        model=bundle.name,
        split=split,
        data_version=data_version(Path(processed)),
        variant=predictor.variant,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        observations=observe(predictor, canvases),
    )


def _sample(processed: Path, split: str, n: int, seed: int) -> np.ndarray:
    """``n`` seeded canvases ``(n, S, S, 4)`` of a processed split (numpy only: no torch here)."""
    path = processed / f"{split}_images.npy"
    if not path.is_file():
        raise PokedexError(
            f"{path} not found: run `pokedex data prepare` or give the right --processed"
        )
    images = np.load(path, mmap_mode="r")
    idx = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
    return np.asarray(images[idx])


def write_profile(bundle: Bundle, profile: Profile) -> Path:
    """Store ``profile`` in the bundle atomically (compact JSON); returns the file."""
    path = bundle.path / REFERENCE_FILE
    write_bytes_atomic(path, json.dumps(profile.to_dict(), separators=(",", ":")).encode("utf-8"))
    return path


def read_profile(bundle: Bundle) -> Profile | None:
    """The bundle's reference profile; None when it has none, PokedexError when it is stale
    (built for another model) or malformed."""
    path = bundle.path / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        profile = Profile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise PokedexError(f"{path}: not a drift reference: {exc}") from exc
    if profile.model != bundle.name:
        raise PokedexError(
            f"{path} was built for {profile.model}, this bundle is {bundle.name}: "
            "rebuild it with `pokedex drift profile`"
        )
    return profile
