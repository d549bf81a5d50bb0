"""`pokedex registry promote`: the gate between the ``candidate`` and ``production`` aliases.

Both versions are downloaded from the registry and scored on the same images
(:mod:`pokedex.evaluation.gate`); ``production`` moves only when the candidate passes, and the
numbers it passed with are recorded as tags on its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pokedex.core.bundle import read_bundle
from pokedex.core.modelref import parse_registry_ref
from pokedex.evaluation.gate import Comparison, GateSettings, compare
from pokedex.store.registry import (
    PRODUCTION,
    alias_version,
    download_bundle,
    get_version,
    open_client,
)


@dataclass
class Promotion:
    """What the gate decided for a candidate version."""

    name: str
    candidate: str  # version
    production: str | None  # the version that held the alias before
    comparison: Comparison | None  # None when the candidate already was production
    promoted: bool


def promote(
    ref: str, processed: Path, settings: GateSettings, *, dry_run: bool = False
) -> Promotion:
    """Score the candidate a REF names and the production model on the same images; move
    ``production`` to the candidate when the gate allows it (and ``dry_run`` is off)."""
    parsed = parse_registry_ref(ref)
    client = open_client()
    candidate = get_version(client, parsed)
    production = alias_version(client, parsed.name, PRODUCTION)
    if production is not None and production.version == candidate.version:
        return Promotion(parsed.name, str(candidate.version), str(production.version), None, True)
    new = read_bundle(download_bundle(parsed.uri(candidate.version)))
    old = (
        None if production is None else read_bundle(download_bundle(parsed.uri(production.version)))
    )
    comparison = compare(new, old, processed, settings)
    result = Promotion(
        parsed.name,
        str(candidate.version),
        None if production is None else str(production.version),
        comparison,
        comparison.accepted and not dry_run,
    )
    if result.promoted:
        client.set_registered_model_alias(parsed.name, PRODUCTION, candidate.version)
        for key, value in _gate_tags(comparison, result.production).items():
            client.set_model_version_tag(parsed.name, str(candidate.version), key, value)
    return result


def _gate_tags(comparison: Comparison, replaced: str | None) -> dict[str, str]:
    scores = comparison.candidate
    return {
        "gate.acc_top1": f"{scores.acc_top1:.4f}",
        "gate.acc_top5": f"{scores.acc_top5:.4f}",
        "gate.ece": f"{scores.ece:.4f}",
        "gate.images": str(scores.images),
        "gate.data_version": comparison.data_version,
        "gate.replaced": replaced or "none",
    }
