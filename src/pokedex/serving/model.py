"""The served model: a bundle, its ONNX session and its Pokédex facts, and what it says per image.

Loading resolves a REF (bundle folder or ``models:/`` registry URI), opens the ONNX variant,
reads the catalog and type chart, and runs one warm-up batch, so a broken model fails here and
not on the first request. The object is immutable once built: a reload builds a new one and
swaps the reference, which is what makes the swap atomic.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from pokedex.core.bundle import EMBEDDINGS_FILE, Bundle, read_bundle, read_catalog
from pokedex.core.modelref import is_registry_ref, parse_registry_ref
from pokedex.core.openset import rule_score
from pokedex.core.predictor import OnnxPredictor
from pokedex.core.schemas import (
    ConfusedPair,
    EmbeddingMap,
    ModelInfo,
    ModelRef,
    OpenSetInfo,
    Prediction,
    SpeciesScore,
    Weakness,
)
from pokedex.dex.catalog import Species, normalize_name
from pokedex.dex.typechart import TYPES, TypeChart
from pokedex.errors import PokedexError
from pokedex.serving.batching import Row
from pokedex.store.registry import resolve_ref

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model bundle, ready to predict."""

    bundle: Bundle
    predictor: OnnxPredictor
    catalog: dict[str, Species]
    typechart: TypeChart | None
    open_set: OpenSetInfo | None
    confused_pairs: tuple[ConfusedPair, ...] = ()
    embeddings: EmbeddingMap | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def ref(self) -> ModelRef:
        """Name, version and variant."""
        meta = self.bundle.meta
        return ModelRef(
            name=str(meta.get("name", "pokedex")),
            version=str(meta.get("version", "unknown")),
            variant=self.predictor.variant,
        )

    def info(self) -> ModelInfo:
        """What ``GET /v1/model`` shows."""
        metrics = self.bundle.meta.get("metrics") or {}
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        return ModelInfo(
            **self.ref.model_dump(),
            num_classes=len(self.bundle.classes),
            input_size=self.bundle.preprocess.size,
            background=self.bundle.preprocess.background,
            runtime=self.predictor.runtime,
            precision=self.predictor.precision,
            flip_average=self.bundle.flip_average,
            open_set=self.open_set,
            confused_pairs=list(self.confused_pairs),
            metrics=numeric,
            loaded_at=self.loaded_at,
        )

    def species(self, name: str) -> Species | None:
        """Catalog entry by class name, also matching loose spellings ("Mr. Mime")."""
        return self.catalog.get(name) or self.catalog.get(normalize_name(name))

    def search(self, query: str, limit: int) -> tuple[int, list[Species]]:
        """Species whose name contains ``query`` (or whose number it is), and how many match.

        Name prefixes rank first, then national-number order; an empty query lists all.
        """
        q = normalize_name(query)
        hits = [
            s
            for s in self.catalog.values()
            if q in s.name or q in normalize_name(s.display_name) or q == str(s.national_number)
        ]
        hits.sort(key=lambda s: (not s.name.startswith(q), s.national_number, s.name))
        return len(hits), hits[:limit]

    def weaknesses(self, types: list[str]) -> list[Weakness]:
        """Attack types that hit this typing for more than x1, strongest first."""
        if self.typechart is None or not types:
            return []
        return [Weakness(type=t, multiplier=m) for t, m in self.typechart.weaknesses(types)]

    def describe(self, row: Row, top_k: int) -> Prediction:
        """The answer for one image from its model outputs."""
        probs = row.probabilities  # (C,)
        top = np.argsort(-probs, kind="stable")[:top_k]
        scores = []
        for i in top:
            name = self.bundle.classes[int(i)]
            entry = self.catalog.get(name)
            scores.append(
                SpeciesScore(
                    name=name,
                    display_name=entry.display_name if entry else name,
                    national_number=entry.national_number if entry else None,
                    probability=float(np.clip(probs[i], 0.0, 1.0)),
                )
            )
        best = self.catalog.get(scores[0].name)
        types = list(best.types) if best else _types_from_head(row.type_probabilities)
        return Prediction(
            species=scores,
            known=self.is_known(row),
            types=types,
            stats=dict(best.stats) if best else None,
            weaknesses=self.weaknesses(types),
        )

    def is_known(self, row: Row) -> bool:
        """Open-set decision, the rule `pokedex evaluate` fitted: known when score >= threshold."""
        rule = self.open_set
        if rule is None:
            return True
        # row.energy = -T*logsumexp(logits/T); the scores use its negation (higher = known)
        table = {
            "msp": row.probabilities.max(keepdims=True),
            "energy": np.array([-row.energy]),
            "cosine": np.array([row.cosine]),  # the predictor's, from the bundle's centroids
        }
        return bool(rule_score(rule.score, table, rule.standardize)[0] >= rule.threshold)


def _types_from_head(type_probabilities: np.ndarray) -> list[str]:
    """Fallback typing from the model's type head when the catalog lacks the species."""
    order = np.argsort(-type_probabilities, kind="stable")
    chosen = [TYPES[int(i)] for i in order[:2] if type_probabilities[i] >= 0.5]
    return chosen or [TYPES[int(order[0])]]


def load_model(
    ref: str, variant: str = "auto", threads: int = 0, runtime: str = "auto"
) -> ServedModel:
    """Load and warm up the model a REF names; PokedexError (or the runtime's error) if broken."""
    bundle = read_bundle(resolve_ref(ref))
    predictor = OnnxPredictor(bundle, variant=variant, threads=threads, runtime=runtime)
    catalog = read_catalog(bundle)
    chart_path = bundle.path / "typechart.json"
    typechart = None
    if chart_path.is_file():
        try:
            typechart = TypeChart.from_dict(json.loads(chart_path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise PokedexError(f"{chart_path}: not a type chart: {exc}") from exc
    if not catalog or typechart is None:
        log.warning(
            "bundle %s lacks its catalog or type chart: answers carry fewer facts", bundle.path
        )
    model = ServedModel(
        bundle,
        predictor,
        catalog,
        typechart,
        _open_set(bundle),
        _confused_pairs(bundle),
        _embeddings(bundle),
    )
    size = bundle.preprocess.size
    out = predictor.run(np.zeros((1, 3, size, size), dtype=np.float32))
    if out.probabilities.shape != (1, len(bundle.classes)):
        raise PokedexError(
            f"{bundle.path}: the model outputs {out.probabilities.shape[1]} classes, "
            f"classes.json lists {len(bundle.classes)}"
        )
    width, centroids = out.features.shape[1], predictor.centroids
    usable = centroids is not None and centroids.shape[1] == width
    if model.open_set is not None and "cosine" in model.open_set.score and not usable:
        raise PokedexError(
            f"{bundle.path}: the open-set score {model.open_set.score!r} needs centroids.npy "
            f"with {width} features per species (run `pokedex evaluate` on the bundle)"
        )
    log.info("loaded model %s (%s) from %s", bundle.name, predictor.variant, bundle.path)
    return model


def _open_set(bundle: Bundle) -> OpenSetInfo | None:
    raw = bundle.meta.get("open_set")
    if raw is None:
        return None
    try:
        return OpenSetInfo.model_validate(raw)
    except ValueError as exc:
        raise PokedexError(f"{bundle.path}: invalid open_set in bundle.json: {exc}") from exc


def _confused_pairs(bundle: Bundle) -> tuple[ConfusedPair, ...]:
    try:
        return tuple(ConfusedPair.model_validate(p) for p in bundle.meta.get("confused_pairs", []))
    except (ValueError, TypeError) as exc:
        raise PokedexError(f"{bundle.path}: invalid confused_pairs in bundle.json: {exc}") from exc


def _embeddings(bundle: Bundle) -> EmbeddingMap | None:
    path = bundle.path / EMBEDDINGS_FILE
    if not path.is_file():
        return None
    try:
        return EmbeddingMap.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise PokedexError(f"{path}: not an embedding map: {exc}") from exc


def check_reload_ref(ref: str, roots: list[str]) -> str:
    """Validate an admin REF: a ``models:/`` URI or a folder under an allowed root, else ValueError.

    Refuses URLs of any scheme (no outbound fetches), ``..`` and backslashes, before touching
    the file system beyond resolving the path.
    """
    if is_registry_ref(ref):
        try:
            parse_registry_ref(ref)
        except PokedexError as exc:
            raise ValueError(str(exc)) from exc
        return ref
    if _SCHEME.match(ref) or any(c in ref for c in "\\\x00%?#;") or ".." in Path(ref).parts:
        raise ValueError(
            "the model must be a bundle folder under an allowed root or a models:/ URI"
        )
    target = Path(ref).resolve()
    for root in roots:
        if target.is_relative_to(Path(root).resolve()):
            return str(target)
    raise ValueError("the model folder is outside the allowed model roots")
