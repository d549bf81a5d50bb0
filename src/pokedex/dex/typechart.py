"""The type chart: how much damage each attack type does to each defending type combination."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from pokedex.errors import PokedexError

logger = logging.getLogger(__name__)

# PokéAPI id order (1..18). Ids 10001+ ("unknown", "shadow") and "stellar" never appear on a
# species' own typing, so they are left out of the chart on purpose.
TYPES: tuple[str, ...] = (
    "normal",
    "fighting",
    "flying",
    "poison",
    "ground",
    "rock",
    "bug",
    "ghost",
    "steel",
    "fire",
    "water",
    "grass",
    "electric",
    "psychic",
    "ice",
    "dragon",
    "dark",
    "fairy",
)
_TYPE_INDEX = {name: i for i, name in enumerate(TYPES)}
_FACTORS = (0.0, 0.5, 1.0, 2.0)
# Labels of the buckets in `matchups`, from the most to the least effective non-neutral factor.
_BUCKETS = (("x2", 2.0), ("x0.5", 0.5), ("x0", 0.0))


class UnknownTypeError(PokedexError, ValueError):
    """A type name that is not one of the 18 in `TYPES`."""


def normalize_type(name: str) -> str:
    """Return the canonical identifier for a type name ("Fire " -> "fire"), or raise."""
    key = str(name).strip().lower()
    if key not in _TYPE_INDEX:
        raise UnknownTypeError(f"unknown type {name!r}; valid types: {', '.join(TYPES)}")
    return key


def read_pokeapi_table(
    pokeapi_dir: Path, filename: str, columns: Sequence[str]
) -> list[dict[str, str]]:
    """Read one PokéAPI CSV table as rows of strings, checking that it has ``columns``."""
    path = Path(pokeapi_dir) / filename
    if not path.is_file():
        raise PokedexError(f"missing PokéAPI table {filename} in {pokeapi_dir}")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise PokedexError(f"{path}: missing column(s) {', '.join(missing)}")
        return list(reader)


class TypeChart:
    """Immutable attack-vs-defence table; ``factors[attack][defend]`` is 0, 0.5, 1 or 2."""

    __slots__ = ("_factors",)
    _factors: Mapping[str, Mapping[str, float]]

    def __init__(self, factors: Mapping[str, Mapping[str, float]]) -> None:
        checked: dict[str, Mapping[str, float]] = {}
        for attack in TYPES:
            row = factors.get(attack)
            if not isinstance(row, Mapping):
                raise PokedexError(f"type chart has no row for attack type {attack!r}")
            values: dict[str, float] = {}
            for defend in TYPES:
                value = row.get(defend)
                if value is None:
                    raise PokedexError(f"type chart has no factor for {attack} -> {defend}")
                # bool is an int subclass; a stray True must not pass as x1.
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                if not numeric or float(value) not in _FACTORS:
                    raise PokedexError(
                        f"type chart factor {attack} -> {defend} is {value!r}; "
                        f"expected one of {', '.join(map(str, _FACTORS))}"
                    )
                values[defend] = float(value)
            extra = set(row) - set(TYPES)
            if extra:
                raise PokedexError(f"type chart row {attack!r} has unknown types {sorted(extra)}")
            checked[attack] = MappingProxyType(values)
        extra = set(factors) - set(TYPES)
        if extra:
            raise PokedexError(f"type chart has unknown attack types {sorted(extra)}")
        object.__setattr__(self, "_factors", MappingProxyType(checked))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("TypeChart is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TypeChart):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self._factors[a][d] for a in TYPES for d in TYPES))

    def __repr__(self) -> str:
        return f"TypeChart({len(TYPES)} types)"

    @property
    def factors(self) -> Mapping[str, Mapping[str, float]]:
        """Read-only ``factors[attack][defend]`` table."""
        return self._factors

    @classmethod
    def from_pokeapi(cls, pokeapi_dir: Path) -> TypeChart:
        """Build the chart from PokéAPI's ``types.csv`` and ``type_efficacy.csv``."""
        type_rows = read_pokeapi_table(pokeapi_dir, "types.csv", ("id", "identifier"))
        names = {row["id"]: row["identifier"] for row in type_rows}
        absent = [t for t in TYPES if t not in names.values()]
        if absent:
            raise PokedexError(f"types.csv in {pokeapi_dir} lacks type(s) {', '.join(absent)}")
        efficacy = read_pokeapi_table(
            pokeapi_dir, "type_efficacy.csv", ("damage_type_id", "target_type_id", "damage_factor")
        )
        factors: dict[str, dict[str, float]] = {t: {} for t in TYPES}
        for row in efficacy:
            attack = names.get(row["damage_type_id"])
            defend = names.get(row["target_type_id"])
            # Rows for types outside the 18 (e.g. stellar) are not part of the chart.
            if attack in _TYPE_INDEX and defend in _TYPE_INDEX:
                # PokéAPI stores percentages (0/50/100/200) to stay integer.
                try:
                    factors[attack][defend] = int(row["damage_factor"]) / 100
                except ValueError as exc:
                    raise PokedexError(f"type_efficacy.csv in {pokeapi_dir}: {exc}") from exc
        try:
            return cls(factors)
        except PokedexError as exc:
            raise PokedexError(f"type_efficacy.csv in {pokeapi_dir}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TypeChart:
        """Rebuild a chart from the output of `to_dict` (e.g. read from a model bundle)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("factors"), Mapping):
            raise PokedexError("type chart data must be an object with a 'factors' object")
        types = data.get("types")
        if types is not None and tuple(types) != TYPES:
            raise PokedexError(f"type chart lists types {types}; expected {list(TYPES)}")
        return cls(data["factors"])

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict that `from_dict` reads back to an equal chart."""
        return {
            "types": list(TYPES),
            "factors": {a: {d: self._factors[a][d] for d in TYPES} for a in TYPES},
        }

    def multiplier(self, attack: str, defender_types: Sequence[str]) -> float:
        """Damage multiplier of ``attack`` on a defender with 1 or 2 types (factors multiply)."""
        row = self._factors[normalize_type(attack)]
        result = 1.0
        for defend in _defender(defender_types):
            result *= row[defend]
        return result

    def defense_profile(self, defender_types: Sequence[str]) -> dict[str, float]:
        """Combined multiplier of every attack type on this defender, in `TYPES` order."""
        defenders = _defender(defender_types)
        return {attack: self.multiplier(attack, defenders) for attack in TYPES}

    def weaknesses(self, defender_types: Sequence[str]) -> list[tuple[str, float]]:
        """Attack types that hit this defender for more than x1, strongest first."""
        profile = self.defense_profile(defender_types)
        hits = [(attack, m) for attack, m in profile.items() if m > 1]
        return sorted(hits, key=lambda item: (-item[1], _TYPE_INDEX[item[0]]))

    def multipliers(self, defender_types: Sequence[str]) -> list[tuple[str, float]]:
        """Every attack type that does not hit this defender for x1 (x4 to x0), strongest first."""
        profile = self.defense_profile(defender_types)
        hits = [(attack, m) for attack, m in profile.items() if m != 1]
        return sorted(hits, key=lambda item: (-item[1], _TYPE_INDEX[item[0]]))

    def matchups(self, type_: str) -> dict[str, Any]:
        """Single-type summary: what ``type_`` hits (attack) and what hits it (defense)."""
        name = normalize_type(type_)
        attack = {label: [d for d in TYPES if self._factors[name][d] == f] for label, f in _BUCKETS}
        defense = {
            label: [a for a in TYPES if self._factors[a][name] == f] for label, f in _BUCKETS
        }
        return {"type": name, "attack": attack, "defense": defense}


def _defender(defender_types: Sequence[str]) -> tuple[str, ...]:
    """Validate a defender typing: one or two distinct known types."""
    # A bare string is a sequence of characters; treat it as one type instead.
    raw = (defender_types,) if isinstance(defender_types, str) else tuple(defender_types)
    names = tuple(normalize_type(t) for t in raw)
    if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
        raise PokedexError(f"a defender has 1 or 2 distinct types, got {list(raw)}")
    return names
