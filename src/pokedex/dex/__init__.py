"""Domain knowledge with no ML inside: the species catalog and the type chart."""

from pokedex.dex.catalog import (
    STATS,
    Ability,
    Species,
    build_catalog,
    load_catalog,
    load_descriptions,
    normalize_name,
    save_catalog,
)
from pokedex.dex.evolution import EvolutionStage
from pokedex.dex.typechart import TYPES, TypeChart, UnknownTypeError, normalize_type

__all__ = [
    "STATS",
    "TYPES",
    "Ability",
    "EvolutionStage",
    "Species",
    "TypeChart",
    "UnknownTypeError",
    "build_catalog",
    "load_catalog",
    "load_descriptions",
    "normalize_name",
    "normalize_type",
    "save_catalog",
]
