"""Dex facts the catalog, API and UI tests share: Charmander's line and Charizard's entry."""

from __future__ import annotations

from pathlib import Path

from pokedex.dex.catalog import Ability, load_catalog, save_catalog
from pokedex.dex.evolution import EvolutionStage

CHARMANDER_LINE = (
    EvolutionStage(name="charmander", display_name="Charmander", national_number=4),
    EvolutionStage(
        name="charmeleon",
        display_name="Charmeleon",
        national_number=5,
        evolves_from="charmander",
        how="level 16",
    ),
    EvolutionStage(
        name="charizard",
        display_name="Charizard",
        national_number=6,
        evolves_from="charmeleon",
        how="level 36",
    ),
)
CHARIZARD_FACTS = {
    "height_m": 1.7,
    "weight_kg": 90.5,
    "abilities": (Ability(name="Blaze"), Ability(name="Solar Power", hidden=True)),
    "evolution": CHARMANDER_LINE,
}


def add_charizard_facts(bundle: Path) -> Path:
    """Give the catalog of ``bundle`` Charizard's size, abilities and evolution line."""
    catalog = load_catalog(bundle / "catalog.json")
    catalog["charizard"] = catalog["charizard"].model_copy(update=CHARIZARD_FACTS)
    save_catalog(catalog, bundle / "catalog.json")
    return bundle
