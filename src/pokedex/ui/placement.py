"""Where a recognised picture lands on the embedding map, worked out from the model's answer.

The map is a UMAP of the test images' penultimate features, fitted once by `pokedex evaluate`;
the fitted projection is not kept in the bundle, so a new picture cannot be projected onto it.
It is placed instead at the probability-weighted mean of its top species' centres on the map,
each centre the median of that species' points (one stray image does not move it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pokedex.core.schemas import EmbeddingMap, SpeciesScore


@dataclass(frozen=True)
class Pull:
    """One of the answer's species that the map has images of, and its centre there."""

    species: str
    probability: float
    x: float
    y: float


@dataclass(frozen=True)
class Placement:
    """The picture's point, and the species centres that placed it, best first."""

    x: float
    y: float
    pulls: tuple[Pull, ...]


def place(points: EmbeddingMap, scores: Sequence[SpeciesScore]) -> Placement | None:
    """The probability-weighted mean of the scored species' centres on the map; None when
    the map has no image of any of them."""
    xy = np.column_stack([points.x, points.y])  # (N, 2)
    species = np.asarray(points.species)  # (N,)
    pulls = []
    for score in scores:
        mine = species == score.name
        if score.probability > 0 and mine.any():
            cx, cy = np.median(xy[mine], axis=0)
            pulls.append(Pull(score.name, score.probability, float(cx), float(cy)))
    if not pulls:
        return None
    weights = np.array([p.probability for p in pulls])  # (K,)
    centres = np.array([(p.x, p.y) for p in pulls])  # (K, 2)
    x, y = weights @ centres / weights.sum()
    return Placement(float(x), float(y), tuple(pulls))
