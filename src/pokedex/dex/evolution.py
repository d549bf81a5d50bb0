"""Evolution lines: which species evolve into which, and how, in short English phrases."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pokedex.dex.typechart import read_pokeapi_table

# What each PokéAPI trigger says before its conditions; an unlisted trigger reads as its name.
_TRIGGERS = {
    "level-up": "level up",
    "use-item": "use an item",
    "shed": "level 20 with a spare party slot",
    "spin": "spin around holding a Sweet",
    "tower-of-darkness": "train in the Tower of Darkness",
    "tower-of-waters": "train in the Tower of Waters",
    "three-critical-hits": "land three critical hits in one battle",
    "take-damage": "take damage",
    "other": "a special condition",
    "agile-style-move": "use an agile-style move",
    "strong-style-move": "use a strong-style move",
    "recoil-damage": "lose HP to recoil",
    "use-move": "use a certain move",
    "three-defeated-bisharp": "defeat three Bisharp that lead Pawniard",
    "gimmighoul-coins": "collect 999 Gimmighoul Coins",
}
_TIMES = {
    "day": "during the day",
    "night": "at night",
    "dusk": "at dusk",
    "full-moon": "under a full moon",
}
_GENDERS = {"1": "(female)", "2": "(male)"}
_PHYSICAL = {
    "1": "with Attack above Defense",
    "-1": "with Attack below Defense",
    "0": "with Attack equal to Defense",
}
_FLAGS = {
    "needs_overworld_rain": "in the rain",
    "turn_upside_down": "with the console upside down",
    "needs_multiplayer": "with another player",
}


class EvolutionStage(BaseModel):
    """One species of an evolution line, with what it evolves from and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="PokéAPI species identifier")
    display_name: str = Field(min_length=1)
    national_number: int = Field(gt=0)
    evolves_from: str | None = Field(None, description="the previous stage's name")
    how: str | None = Field(None, description='e.g. "level 16", "use an item or trade"')


def read_evolution_lines(
    pokeapi_dir: Path, display_names: Mapping[int, str]
) -> dict[int, tuple[EvolutionStage, ...]]:
    """Species id -> every stage of its evolution line, earliest first, with the triggers."""
    species = read_pokeapi_table(
        pokeapi_dir,
        "pokemon_species.csv",
        ("id", "identifier", "evolves_from_species_id", "evolution_chain_id"),
    )
    evolutions = read_pokeapi_table(
        pokeapi_dir, "pokemon_evolution.csv", ("evolved_species_id", "evolution_trigger_id")
    )
    triggers = read_pokeapi_table(pokeapi_dir, "evolution_triggers.csv", ("id", "identifier"))
    types = read_pokeapi_table(pokeapi_dir, "types.csv", ("id", "identifier"))

    trigger_names = {row["id"]: row["identifier"] for row in triggers}
    type_names = {row["id"]: row["identifier"].title() for row in types}
    identifiers = {int(row["id"]): row["identifier"] for row in species}
    names = {sid: display_names.get(sid, ident) for sid, ident in identifiers.items()}
    how: dict[int, list[str]] = {}
    for row in evolutions:
        phrase = _phrase(row, trigger_names, type_names, names)
        phrases = how.setdefault(int(row["evolved_species_id"]), [])
        if phrase not in phrases:  # one method per game is listed: keep each wording once
            phrases.append(phrase)

    parent = {int(r["id"]): int(r["evolves_from_species_id"] or 0) for r in species}
    chains: dict[str, list[int]] = {}
    for row in species:
        chains.setdefault(row["evolution_chain_id"] or f"alone-{row['id']}", []).append(
            int(row["id"])
        )
    lines: dict[int, tuple[EvolutionStage, ...]] = {}
    for members in chains.values():
        # earliest stage first, then national number: bulbasaur, ivysaur, venusaur
        members.sort(key=lambda sid: (_depth(sid, parent), sid))
        line = tuple(
            EvolutionStage(
                name=identifiers[sid],
                display_name=names[sid],
                national_number=sid,
                evolves_from=identifiers.get(parent[sid]),
                how=" or ".join(how[sid]) if sid in how else None,
            )
            for sid in members
        )
        lines.update(dict.fromkeys(members, line))
    return lines


def _depth(sid: int, parent: Mapping[int, int]) -> int:
    """How many stages come before ``sid`` (bounded, so a cycle in the table cannot hang)."""
    depth = 0
    while parent.get(sid) and depth < 10:
        sid, depth = parent[sid], depth + 1
    return depth


def _phrase(
    row: Mapping[str, str],
    triggers: Mapping[str, str],
    types: Mapping[str, str],
    species: Mapping[int, str],
) -> str:
    """One evolution method as words: "level 16", "level up with high friendship at night"."""
    trigger = triggers.get(row["evolution_trigger_id"], "other")
    words = [_TRIGGERS.get(trigger, trigger.replace("-", " "))]

    def field(name: str) -> str:
        return (row.get(name) or "").strip()

    if trigger == "level-up" and field("minimum_level"):
        words = [f"level {field('minimum_level')}"]
    if field("minimum_move_count"):
        words.append(f"{field('minimum_move_count')} times")
    if field("minimum_damage_taken"):
        words.append(f"({field('minimum_damage_taken')} HP or more)")
    if field("minimum_steps"):
        words.append(f"after walking {field('minimum_steps')} steps")
    if field("minimum_happiness") or field("minimum_affection"):
        words.append("with high friendship")
    if field("minimum_beauty"):
        words.append("with high beauty")
    if field("held_item_id"):
        words.append("holding an item")
    if field("known_move_type_id"):
        words.append(f"knowing a {types.get(field('known_move_type_id'), 'certain')}-type move")
    elif field("known_move_id"):
        words.append("knowing a certain move")
    if field("party_species_id"):
        partner = species.get(int(field("party_species_id")), "a certain Pokémon")
        words.append(f"with {partner} in the party")
    if field("party_type_id"):
        words.append(f"with a {types.get(field('party_type_id'), 'certain')}-type in the party")
    if field("trade_species_id"):
        words.append(f"for {species.get(int(field('trade_species_id')), 'a certain Pokémon')}")
    if field("relative_physical_stats") in _PHYSICAL:
        words.append(_PHYSICAL[field("relative_physical_stats")])
    if field("near_special_rock") == "1":
        words.append("near a special rock")
    elif field("location_id"):
        words.append("at a special place")
    words += [phrase for flag, phrase in _FLAGS.items() if field(flag) == "1"]
    if field("time_of_day"):
        words.append(_TIMES.get(field("time_of_day"), f"at {field('time_of_day')}"))
    if field("gender_id") in _GENDERS:
        words.append(_GENDERS[field("gender_id")])
    return " ".join(words)
