"""The promotion gate: a candidate and the production model scored on the very same images.

A candidate passes when its top-1 is not lower than production's by more than
``max_top1_drop`` and its ECE (at the temperature stored in its bundle, as it is served) is
not higher by more than ``max_ece_rise``. Top-5 is shown, not gated. Margins come from the
command line, else ``POKEDEX_GATE_MAX_TOP1_DROP`` / ``POKEDEX_GATE_MAX_ECE_RISE``, else 0.01.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pokedex.core.bundle import Bundle
from pokedex.errors import PokedexError
from pokedex.evaluation.calibration import calibration_of
from pokedex.evaluation.inference import load_split, run_net
from pokedex.evaluation.metrics import accuracy

log = logging.getLogger(__name__)


class GateSettings(BaseSettings):
    """Gate margins (fractions: 0.01 is one percentage point) and the split it scores on."""

    model_config = SettingsConfigDict(env_prefix="POKEDEX_GATE_", extra="forbid")

    max_top1_drop: float = Field(0.01, ge=0.0, le=1.0)
    max_ece_rise: float = Field(0.01, ge=0.0, le=1.0)
    split: str = "test"


@dataclass(frozen=True)
class Scores:
    """One model's numbers on the shared images."""

    acc_top1: float
    acc_top5: float
    ece: float
    images: int


@dataclass
class Comparison:
    """Candidate vs production (None on a first promotion) and the verdict."""

    candidate: Scores
    production: Scores | None
    settings: GateSettings
    data_version: str
    reasons: list[str] = field(default_factory=list)  # why it was refused; empty if accepted

    @property
    def accepted(self) -> bool:
        """Whether the candidate may replace production."""
        return not self.reasons


def shared_split(
    processed: Path, split: str, bundles: list[Bundle]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Canvases ``(N, S, S, 4)`` of the species every model knows, and each model's labels
    ``(N,)`` in its own class order: the same images for all, whatever their class lists."""
    data_classes = json.loads((Path(processed) / "classes.json").read_text())
    images, labels = load_split(Path(processed), split, data_classes)  # labels in data order
    per_model = []
    for bundle in bundles:
        index = {name: i for i, name in enumerate(bundle.classes)}
        per_model.append(np.array([index.get(name, -1) for name in data_classes])[labels])
    keep = np.logical_and.reduce([m >= 0 for m in per_model])
    if not keep.any():
        raise PokedexError(f"no {split} image in {processed} is of a species all models know")
    if not keep.all():
        log.info(
            "%s: %d images of species a model does not know are left out", split, (~keep).sum()
        )
        images = np.asarray(images[np.flatnonzero(keep)])
    return images, [m[keep] for m in per_model]


def score(bundle: Bundle, images: np.ndarray, labels: np.ndarray) -> Scores:
    """Top-1, top-5 and ECE (at the bundle's temperature) of one model's PyTorch weights."""
    from pokedex.models.net import load_net

    logits = run_net(load_net(bundle), images, bundle.preprocess).species  # (N, C)
    acc = accuracy(logits, labels)
    ece = calibration_of(logits, labels, bundle.temperature).ece
    return Scores(acc["acc_top1"], acc["acc_top5"], ece, len(labels))


def compare(
    candidate: Bundle, production: Bundle | None, processed: Path, settings: GateSettings
) -> Comparison:
    """Score both models on the same images and decide."""
    from pokedex.provenance import data_version

    bundles = [candidate] if production is None else [candidate, production]
    images, labels = shared_split(processed, settings.split, bundles)
    log.info("gate: scoring %d model(s) on %d %s images", len(bundles), len(images), settings.split)
    scores = [score(b, images, y) for b, y in zip(bundles, labels, strict=True)]
    result = Comparison(
        scores[0], scores[1] if production else None, settings, data_version(processed)
    )
    result.reasons = refusals(result.candidate, result.production, settings)
    return result


def refusals(candidate: Scores, production: Scores | None, settings: GateSettings) -> list[str]:
    """Why the candidate may not replace production (empty: it may)."""
    if production is None:
        return []
    reasons = []
    drop = production.acc_top1 - candidate.acc_top1
    if drop > settings.max_top1_drop:
        reasons.append(
            f"top-1 drops {100 * drop:.2f} pp (allowed {100 * settings.max_top1_drop:.2f})"
        )
    rise = candidate.ece - production.ece
    if rise > settings.max_ece_rise:
        reasons.append(f"ECE rises {100 * rise:.2f} pp (allowed {100 * settings.max_ece_rise:.2f})")
    return reasons


def format_comparison(result: Comparison, candidate: str, production: str | None) -> str:
    """The table the CLI prints: each metric for both models, the change and the margin."""
    s = result.settings
    allowed = {
        "acc_top1": f"≥ {-100 * s.max_top1_drop:+.2f} pp",
        "acc_top5": "not gated",
        "ece": f"≤ {100 * s.max_ece_rise:+.2f} pp",
    }
    rows = [
        ("metric", f"candidate {candidate}", f"production {production or '-'}", "change", "allowed")
    ]
    for key, label in (("acc_top1", "top-1"), ("acc_top5", "top-5"), ("ece", "ECE")):
        new = getattr(result.candidate, key)
        old = None if result.production is None else getattr(result.production, key)
        if old is None:
            rows.append((label, f"{100 * new:.2f} %", "-", "-", allowed[key]))
        else:
            change = f"{100 * (new - old):+.2f} pp"
            rows.append((label, f"{100 * new:.2f} %", f"{100 * old:.2f} %", change, allowed[key]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append(f"images: {result.candidate.images} ({s.split} split, data {result.data_version})")
    return "\n".join(lines)
