"""One drift check: a model's reference profile against a window of its logged predictions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from pokedex.core.bundle import Bundle
from pokedex.errors import PokedexError
from pokedex.monitoring.drift import DriftReport, Observations, compare
from pokedex.monitoring.log import load_window
from pokedex.monitoring.profile import Profile, read_profile
from pokedex.monitoring.window import Window

NO_REFERENCE = "has no drift reference: build one with `pokedex drift profile --model REF`"


class NoReferenceError(PokedexError):
    """The bundle has no usable drift reference (none, stale or malformed)."""


@dataclass
class DriftCheck:
    """A check's report, and the two samples it compared (for the HTML report)."""

    report: DriftReport
    reference: Observations
    current: Observations


def reference_of(bundle: Bundle) -> Profile:
    """The bundle's profile; NoReferenceError when it has none or a stale one."""
    try:
        profile = read_profile(bundle)
    except PokedexError as exc:
        raise NoReferenceError(str(exc)) from exc
    if profile is None:
        raise NoReferenceError(f"model bundle {bundle.path} {NO_REFERENCE}")
    return profile


def check_drift(bundle: Bundle, profile: Profile, engine: Engine, window: Window) -> DriftCheck:
    """Compare ``window`` of the bundle's logged predictions with its reference ``profile``."""
    name = str(bundle.meta.get("name", "pokedex"))
    version = str(bundle.meta.get("version", "unknown"))
    current = load_window(engine, name, version, window)
    report = compare(
        profile.observations,
        current,
        model=bundle.name,
        window=window.text,
        reference_split=profile.split,
    )
    return DriftCheck(report=report, reference=profile.observations, current=current)
