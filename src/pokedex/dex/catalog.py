"""The species catalog: what the Pokédex knows about each class the model can predict."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pokedex.dex.evolution import EvolutionStage, read_evolution_lines
from pokedex.dex.typechart import normalize_type, read_pokeapi_table
from pokedex.errors import PokedexError
from pokedex.io import write_json_atomic

logger = logging.getLogger(__name__)

STATS: tuple[str, ...] = ("hp", "attack", "defense", "special-attack", "special-defense", "speed")
CATALOG_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # version 1 lacks size, abilities and evolution: they load empty
_ENGLISH = "9"  # PokéAPI languages.id of English


class Ability(BaseModel):
    """One of a species' abilities, by its English name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    hidden: bool = False


class Species(BaseModel):
    """One predictable class with its PokéAPI facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    display_name: str = Field(min_length=1)
    national_number: int = Field(gt=0)
    pokeapi_id: int = Field(gt=0)
    types: tuple[str, ...]
    stats: dict[str, int]
    generation: int = Field(ge=1)
    description: str | None = None
    height_m: float | None = Field(None, ge=0)
    weight_kg: float | None = Field(None, ge=0)
    abilities: tuple[Ability, ...] = ()
    evolution: tuple[EvolutionStage, ...] = Field(
        (), description="the whole line, earliest stage first; one stage when it never evolves"
    )

    @field_validator("types")
    @classmethod
    def _one_or_two_known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(normalize_type(t) for t in value)
        if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise ValueError(f"expected 1 or 2 distinct types, got {list(value)}")
        return names

    @field_validator("stats")
    @classmethod
    def _six_base_stats(cls, value: dict[str, int]) -> dict[str, int]:
        if set(value) != set(STATS):
            raise ValueError(f"expected stats {list(STATS)}, got {sorted(value)}")
        return {s: value[s] for s in STATS}


def normalize_name(name: str) -> str:
    """Fold a name to identifier style: "Mr. Mime" -> "mr-mime", "Nidoran♀" -> "nidoran-f"."""
    # PokéAPI spells gender signs as -f / -m suffixes (nidoran-f).
    text = name.replace("♀", " f").replace("♂", " m")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    # An apostrophe joins a word (farfetch'd -> farfetchd); any other punctuation separates.
    text = re.sub(r"['’`]", "", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


@dataclass(frozen=True)
class _Match:
    pokemon_id: int
    form_id: int | None
    via: str  # which table matched: pokemon, species, form or english name


@dataclass
class _PokeApi:
    """The PokéAPI tables the catalog needs, indexed by id and by normalised name."""

    lookup: dict[str, _Match] = field(default_factory=dict)
    pokemon_species: dict[int, int] = field(default_factory=dict)
    pokemon_names: dict[int, str] = field(default_factory=dict)
    species: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> identifier, gen
    english: dict[int, str] = field(default_factory=dict)
    types: dict[int, tuple[str, ...]] = field(default_factory=dict)
    form_types: dict[int, tuple[str, ...]] = field(default_factory=dict)
    stats: dict[int, dict[str, int]] = field(default_factory=dict)
    size: dict[int, tuple[float, float]] = field(default_factory=dict)  # pokemon id -> m, kg
    abilities: dict[int, tuple[Ability, ...]] = field(default_factory=dict)
    evolution: dict[int, tuple[EvolutionStage, ...]] = field(default_factory=dict)


def _slotted(
    rows: list[dict[str, str]], key: str, names: Mapping[str, str]
) -> dict[int, tuple[str, ...]]:
    """Group (key, type_id, slot) rows into key -> type identifiers in slot order."""
    slots: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        slots.setdefault(int(row[key]), []).append(
            (int(row["slot"]), names.get(row["type_id"], row["type_id"]))
        )
    return {k: tuple(name for _, name in sorted(v)) for k, v in slots.items()}


def _load_pokeapi(pokeapi_dir: Path) -> _PokeApi:
    """Read every table first, so a missing file fails before any work is done."""
    table = read_pokeapi_table
    pokemon = table(
        pokeapi_dir,
        "pokemon.csv",
        ("id", "identifier", "species_id", "height", "weight", "is_default"),
    )
    species = table(pokeapi_dir, "pokemon_species.csv", ("id", "identifier", "generation_id"))
    forms = table(pokeapi_dir, "pokemon_forms.csv", ("id", "identifier", "pokemon_id"))
    names = table(
        pokeapi_dir, "pokemon_species_names.csv", ("pokemon_species_id", "local_language_id")
    )
    types = table(pokeapi_dir, "types.csv", ("id", "identifier"))
    pokemon_types = table(pokeapi_dir, "pokemon_types.csv", ("pokemon_id", "type_id", "slot"))
    form_types = table(pokeapi_dir, "pokemon_form_types.csv", ("pokemon_form_id", "type_id"))
    stat_names = table(pokeapi_dir, "stats.csv", ("id", "identifier"))
    stats = table(pokeapi_dir, "pokemon_stats.csv", ("pokemon_id", "stat_id", "base_stat"))
    abilities = table(pokeapi_dir, "abilities.csv", ("id", "identifier"))
    ability_names = table(pokeapi_dir, "ability_names.csv", ("ability_id", "local_language_id"))
    pokemon_abilities = table(
        pokeapi_dir, "pokemon_abilities.csv", ("pokemon_id", "ability_id", "is_hidden", "slot")
    )

    api = _PokeApi()
    default: dict[int, int] = {}  # species id -> its default pokemon id
    for row in pokemon:
        pid, sid = int(row["id"]), int(row["species_id"])
        api.pokemon_species[pid] = sid
        api.pokemon_names[pid] = row["identifier"]
        if row["height"] and row["weight"]:  # PokéAPI stores decimetres and hectograms
            api.size[pid] = (int(row["height"]) / 10, int(row["weight"]) / 10)
        # The flagged default wins; a species with none falls back to its first pokemon.
        if row["is_default"] == "1" or sid not in default:
            default[sid] = pid
    for row in species:
        api.species[int(row["id"])] = (row["identifier"], int(row["generation_id"]))
    for row in names:
        if row["local_language_id"] == _ENGLISH and row.get("name"):
            api.english[int(row["pokemon_species_id"])] = row["name"]

    # Insertion order is priority: an exact pokemon identifier beats a species, a form and
    # finally an English display name that folds to the same key.
    candidates: list[tuple[str, _Match]] = [
        (r["identifier"], _Match(int(r["id"]), None, "pokemon")) for r in pokemon
    ]
    for row in species:
        sid = int(row["id"])
        if sid in default:
            candidates.append((row["identifier"], _Match(default[sid], None, "species")))
    for row in forms:
        match = _Match(int(row["pokemon_id"]), int(row["id"]), "form")
        candidates.append((row["identifier"], match))
    for sid, display in api.english.items():
        if sid in default:
            candidates.append((display, _Match(default[sid], None, "english name")))
    for key, match in candidates:
        api.lookup.setdefault(normalize_name(key), match)

    type_names = {row["id"]: row["identifier"] for row in types}
    api.types = _slotted(pokemon_types, "pokemon_id", type_names)
    api.form_types = _slotted(form_types, "pokemon_form_id", type_names)
    stat_ids = {row["id"]: row["identifier"] for row in stat_names}
    for row in stats:
        stat = stat_ids.get(row["stat_id"])
        if stat in STATS:
            api.stats.setdefault(int(row["pokemon_id"]), {})[stat] = int(row["base_stat"])

    ability_english = {row["id"]: row["identifier"].replace("-", " ").title() for row in abilities}
    for row in ability_names:
        if row["local_language_id"] == _ENGLISH and row.get("name"):
            ability_english[row["ability_id"]] = row["name"]
    slotted: dict[int, list[tuple[int, Ability]]] = {}
    for row in pokemon_abilities:
        ability = Ability(
            name=ability_english.get(row["ability_id"], row["ability_id"]),
            hidden=row["is_hidden"] == "1",
        )
        slotted.setdefault(int(row["pokemon_id"]), []).append((int(row["slot"]), ability))
    api.abilities = {
        pid: tuple(a for _, a in sorted(v, key=lambda item: item[0])) for pid, v in slotted.items()
    }
    api.evolution = read_evolution_lines(pokeapi_dir, api.english)
    return api


def build_catalog(
    class_names: Sequence[str], pokeapi_dir: Path, descriptions: Path | None = None
) -> tuple[dict[str, Species], list[str]]:
    """Return the catalog for the classes that resolve, and the names that did not."""
    try:
        api = _load_pokeapi(Path(pokeapi_dir))
    except (ValueError, KeyError) as exc:
        raise PokedexError(f"malformed PokéAPI table in {pokeapi_dir}: {exc!r}") from exc
    texts = load_descriptions(descriptions) if descriptions is not None else {}
    catalog: dict[str, Species] = {}
    unresolved: list[str] = []
    fallbacks: list[str] = []
    for name in class_names:
        match = api.lookup.get(normalize_name(name))
        species = _species(name, match, api, texts) if match else None
        if species is None:
            unresolved.append(name)
            continue
        catalog[name] = species
        if match and (match.via != "pokemon" or name != normalize_name(name)):
            fallbacks.append(f"{name} -> {api.pokemon_names.get(match.pokemon_id)} ({match.via})")
    if fallbacks:
        logger.info("resolved %d class name(s) by fallback: %s", len(fallbacks), fallbacks)
    if unresolved:
        logger.warning("%d class name(s) did not resolve: %s", len(unresolved), unresolved)
    logger.info("species catalog: %d of %d class names resolved", len(catalog), len(class_names))
    return catalog, unresolved


def _species(name: str, match: _Match, api: _PokeApi, texts: Mapping[str, str]) -> Species | None:
    """Assemble one Species, or None (with a warning) when PokéAPI's data for it is incomplete."""
    sid = api.pokemon_species.get(match.pokemon_id, 0)
    identifier, generation = api.species.get(sid, ("", 0))
    display = api.english.get(sid, identifier)
    # A form such as arceus-fire carries its own typing; otherwise the pokemon's applies.
    types = api.form_types.get(match.form_id or -1) or api.types.get(match.pokemon_id, ())
    description = texts.get(normalize_name(display)) or texts.get(identifier)
    height, weight = api.size.get(match.pokemon_id, (None, None))
    try:
        return Species(
            name=name,
            display_name=display,
            national_number=sid,
            pokeapi_id=match.pokemon_id,
            types=types,
            stats=api.stats.get(match.pokemon_id, {}),
            generation=generation,
            description=description,
            height_m=height,
            weight_kg=weight,
            abilities=api.abilities.get(match.pokemon_id, ()),
            evolution=api.evolution.get(sid, ()),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        logger.warning("class %r matched pokemon %d but %s", name, match.pokemon_id, problems)
        return None


def save_catalog(
    catalog: Mapping[str, Species], path: Path, *, with_descriptions: bool = True
) -> None:
    """Write the catalog atomically as sorted, byte-stable JSON."""
    exclude = None if with_descriptions else {"description"}
    species = {}
    for name, entry in catalog.items():
        if name != entry.name:
            raise PokedexError(f"catalog key {name!r} holds species named {entry.name!r}")
        species[name] = entry.model_dump(mode="json", exclude=exclude)
    write_json_atomic(Path(path), {"version": CATALOG_VERSION, "species": species})


def load_catalog(path: Path) -> dict[str, Species]:
    """Read a catalog written by `save_catalog`, validating every entry."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PokedexError(f"species catalog not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PokedexError(f"cannot read species catalog {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") not in _READABLE_VERSIONS:
        raise PokedexError(f"{path} is not a version 1 or {CATALOG_VERSION} species catalog")
    if not isinstance(data.get("species"), dict):
        raise PokedexError(f"{path}: 'species' must be an object")
    catalog: dict[str, Species] = {}
    for name, entry in data["species"].items():
        try:
            species = Species.model_validate(entry)
        except ValidationError as exc:
            raise PokedexError(f"{path}: species {name!r} is invalid: {exc}") from exc
        if species.name != name:
            raise PokedexError(f"{path}: key {name!r} holds species named {species.name!r}")
        catalog[name] = species
    return catalog


def load_descriptions(path: Path) -> dict[str, str]:
    """Read Pokédex entries from the Kaggle table, keyed by `normalize_name` of the English name."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise PokedexError(f"descriptions table not found: {path}") from exc
    text = _decode(raw)
    first_line = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if "\t" in first_line else ",")
    columns = reader.fieldnames or []
    name_column = next((c for c in ("english_name", "name") if c in columns), None)
    if name_column is None or "description" not in columns:
        raise PokedexError(
            f"{path}: needs an 'english_name' (or 'name') and a 'description' column"
        )
    result: dict[str, str] = {}
    for row in reader:
        name, description = (row.get(name_column) or "").strip(), row.get("description") or ""
        if name and description.strip():
            result[normalize_name(name)] = " ".join(description.split())
    return result


def _decode(raw: bytes) -> str:
    """Decode a table whatever its encoding: the Kaggle export is UTF-16 with a BOM."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (raw[:200].count(b"\x00") > 50):
        # The published file ends with half a UTF-16 code unit; drop it instead of failing.
        raw = raw[: len(raw) - len(raw) % 2]
        return raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
