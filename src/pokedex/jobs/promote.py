"""`pokedex registry promote`: the gate between the ``candidate`` and ``production`` aliases.

Both versions are downloaded from the registry and scored on the same images
(:mod:`pokedex.evaluation.gate`); ``production`` moves only when the candidate passes, and the
numbers it passed with are recorded as tags on its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pokedex.core.bundle import read_bundle
from pokedex.core.modelref import parse_registry_ref
from pokedex.errors import PokedexError
from pokedex.evaluation.gate import Comparison, GateSettings, compare, format_comparison
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


def gate_settings(**margins: float | None) -> GateSettings:
    """The gate's margins: those given, the rest from ``POKEDEX_GATE_*`` or the defaults; an
    invalid margin is a usage error (exit code 2)."""
    try:
        return GateSettings(**{k: v for k, v in margins.items() if v is not None})
    except ValidationError as exc:
        raise PokedexError(f"invalid gate margin: {exc.errors()[0]['msg']}", exit_code=2) from None


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


def verdict_lines(result: Promotion, *, dry_run: bool) -> list[str]:
    """What the gate decided, as the lines `pokedex registry promote` prints: the comparison
    table, the verdict with its reasons, and where ``production`` points now."""
    if result.comparison is None:
        return [f"{result.name} version {result.candidate} already is production"]
    old = result.production and f"v{result.production}"
    lines = [format_comparison(result.comparison, f"v{result.candidate}", old)]
    if not result.comparison.accepted:
        return [
            *lines,
            f"verdict: REFUSED ({'; '.join(result.comparison.reasons)})",
            f"production stays at version {result.production}",
        ]
    if result.production is None:
        verdict = "no production model yet: the candidate becomes production"
    else:
        verdict = "the candidate is within the margins"
    action = "would move" if dry_run else "moved"
    return [
        *lines,
        f"verdict: PROMOTE ({verdict}); production {action} to version {result.candidate}",
    ]
