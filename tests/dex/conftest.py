"""A tiny PokéAPI-like folder of CSV tables, shaped like the real export."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from pokedex.dex import TYPES

# Non-neutral factors (percent, as PokéAPI stores them); every other pair is 100.
EFFICACY = {
    ("normal", "ghost"): 0,
    ("fire", "grass"): 200,
    ("fire", "water"): 50,
    ("water", "fire"): 200,
    ("electric", "water"): 200,
    ("electric", "flying"): 200,
    ("electric", "ground"): 0,
    ("ground", "fire"): 200,
    ("ground", "flying"): 0,
    ("rock", "fire"): 200,
    ("rock", "flying"): 200,
    ("bug", "fire"): 50,
    ("bug", "flying"): 50,
    ("ice", "flying"): 200,
    ("ice", "ground"): 200,
    ("ice", "fire"): 50,
    ("ghost", "ghost"): 200,
}
# pokemon id, identifier, species id, is_default, type slots, base stats (hp..speed)
POKEMON = [
    (6, "charizard", 6, 1, ("fire", "flying"), (78, 84, 78, 109, 85, 100)),
    (29, "nidoran-f", 29, 1, ("poison",), (55, 47, 52, 40, 40, 41)),
    (83, "farfetchd", 83, 1, ("normal", "flying"), (52, 90, 55, 58, 62, 60)),
    (122, "mr-mime", 122, 1, ("psychic", "fairy"), (40, 45, 65, 100, 120, 90)),
    (472, "gliscor", 472, 1, ("ground", "flying"), (75, 95, 125, 45, 75, 95)),
    (493, "arceus", 493, 1, ("normal",), (120, 120, 120, 120, 120, 120)),
    # A non-default variant listed before the default, so "first row wins" would be wrong.
    (10999, "frillish-giant", 592, 0, ("water", "ghost"), (99, 99, 99, 99, 99, 99)),
    (592, "frillish-male", 592, 1, ("water", "ghost"), (55, 40, 50, 65, 85, 40)),
]
# species id, identifier, generation, English name
SPECIES = [
    (6, "charizard", 1, "Charizard"),
    (29, "nidoran-f", 1, "Nidoran♀"),
    (83, "farfetchd", 1, "Farfetch’d"),
    (122, "mr-mime", 1, "Mr. Mime"),
    (472, "gliscor", 4, "Gliscor"),
    (493, "arceus", 4, "Arceus"),
    (592, "frillish", 5, "Frillish"),
]
# Species with an evolution line but no pokemon row of their own: they never resolve as a class.
LINE_ONLY = [
    (4, "charmander", 1, "Charmander"),
    (5, "charmeleon", 1, "Charmeleon"),
    (439, "mime-jr", 4, "Mime Jr."),
    (865, "sirfetchd", 8, "Sirfetch’d"),
]
# evolved species id -> the species it evolves from, and the chain every member shares
EVOLVES_FROM = {5: 4, 6: 5, 122: 439, 865: 83}
CHAINS = {4: 1, 5: 1, 6: 1, 439: 2, 122: 2, 83: 3, 865: 3}
# evolved species, trigger id, minimum level, known move, held item, happiness, time of day
EVOLUTIONS = [
    (5, 1, 16, "", "", "", ""),
    (6, 1, 36, "", "", "", ""),
    (122, 1, "", 102, "", "", ""),
    (122, 1, "", 102, "", "", ""),  # the same method listed for another game: said once
    (122, 1, "", "", "", 160, "night"),
    (122, 2, "", "", 5, "", ""),
    (865, 8, "", "", "", "", ""),
]
TRIGGERS = [(1, "level-up"), (2, "trade"), (3, "use-item"), (8, "three-critical-hits")]
# ability id, identifier, English name ("" when the table has none)
ABILITIES = [(66, "blaze", "Blaze"), (94, "solar-power", "Solar Power"), (3, "speed-boost", "")]
# pokemon id, ability id, hidden, slot: charizard's rows in reverse slot order
POKEMON_ABILITIES = [(6, 94, 1, 3), (6, 3, 0, 2), (6, 66, 0, 1)]
SIZES = {6: (17, 905)}  # decimetres, hectograms (PokéAPI's units); the rest are 10 and 100
# form id, identifier, pokemon id, own types (empty: the pokemon's types apply)
EXTRA_FORMS = [
    (10046, "arceus-fire", 493, ("fire",)),
    (10057, "arceus-unknown", 493, ("unknown",)),
    (10552, "frillish-female", 592, ()),
]
TYPE_IDS = {name: i for i, name in enumerate(TYPES, start=1)} | {
    "stellar": 19,
    "unknown": 10001,
    "shadow": 10002,
}
STAT_NAMES = ["hp", "attack", "defense", "special-attack", "special-defense", "speed"]


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    """Write a CSV with the csv module, so commas and quotes are escaped like PokéAPI's."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_pokeapi(folder: Path) -> Path:
    """Write every table the dex layer reads into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(
        folder / "types.csv",
        ["id", "identifier", "generation_id", "damage_class_id"],
        [(i, name, 1, "") for name, i in TYPE_IDS.items()],
    )
    # Stellar rows must be ignored, not break the 18x18 chart.
    efficacy = [
        (TYPE_IDS[a], TYPE_IDS[d], EFFICACY.get((a, d), 100))
        for a in [*TYPES, "stellar"]
        for d in TYPES
    ]
    write_csv(
        folder / "type_efficacy.csv",
        ["damage_type_id", "target_type_id", "damage_factor"],
        efficacy,
    )
    write_csv(
        folder / "pokemon.csv",
        [
            "id",
            "identifier",
            "species_id",
            "height",
            "weight",
            "base_experience",
            "order",
            "is_default",
        ],
        [
            (pid, ident, sid, *SIZES.get(pid, (10, 100)), 50, pid, dflt)
            for pid, ident, sid, dflt, _, _ in POKEMON
        ],
    )
    species = SPECIES + LINE_ONLY
    write_csv(
        folder / "pokemon_species.csv",
        ["id", "identifier", "generation_id", "evolves_from_species_id", "evolution_chain_id"],
        [
            (sid, ident, gen, EVOLVES_FROM.get(sid, ""), CHAINS.get(sid, 100 + sid))
            for sid, ident, gen, _ in species
        ],
    )
    names = [(sid, 9, english, "Test, Pokémon") for sid, _, _, english in species]
    names += [(sid, 1, f"ja-{ident}", "") for sid, ident, _, _ in species]
    write_csv(
        folder / "pokemon_species_names.csv",
        ["pokemon_species_id", "local_language_id", "name", "genus"],
        names,
    )
    forms = [(pid, ident, "", pid, 1) for pid, ident, _, _, _, _ in POKEMON]
    forms += [(fid, ident, ident.split("-", 1)[1], pid, 0) for fid, ident, pid, _ in EXTRA_FORMS]
    write_csv(
        folder / "pokemon_forms.csv",
        ["id", "identifier", "form_identifier", "pokemon_id", "is_default"],
        forms,
    )
    # Slots written in reverse, so reading them in file order would swap dual types.
    slots = [
        (pid, TYPE_IDS[t], slot)
        for pid, _, _, _, types, _ in POKEMON
        for slot, t in reversed(list(enumerate(types, start=1)))
    ]
    write_csv(folder / "pokemon_types.csv", ["pokemon_id", "type_id", "slot"], slots)
    form_slots = [
        (fid, TYPE_IDS[t], slot)
        for fid, _, _, types in EXTRA_FORMS
        for slot, t in enumerate(types, start=1)
    ]
    write_csv(folder / "pokemon_form_types.csv", ["pokemon_form_id", "type_id", "slot"], form_slots)
    write_csv(
        folder / "stats.csv",
        ["id", "damage_class_id", "identifier", "is_battle_only"],
        [(i, "", name, 0) for i, name in enumerate([*STAT_NAMES, "accuracy"], start=1)],
    )
    stats = [
        (pid, i, value, 0)
        for pid, _, _, _, _, values in POKEMON
        for i, value in enumerate((*values, 100), start=1)  # + an accuracy row to be dropped
    ]
    write_csv(folder / "pokemon_stats.csv", ["pokemon_id", "stat_id", "base_stat", "effort"], stats)
    write_csv(
        folder / "abilities.csv",
        ["id", "identifier", "generation_id", "is_main_series"],
        [(i, ident, 3, 1) for i, ident, _ in ABILITIES],
    )
    write_csv(
        folder / "ability_names.csv",
        ["ability_id", "local_language_id", "name"],
        [(i, 1, f"ja-{ident}") for i, ident, _ in ABILITIES]
        + [(i, 9, name) for i, _, name in ABILITIES if name],
    )
    write_csv(
        folder / "pokemon_abilities.csv",
        ["pokemon_id", "ability_id", "is_hidden", "slot"],
        POKEMON_ABILITIES,
    )
    write_csv(folder / "evolution_triggers.csv", ["id", "identifier"], TRIGGERS)
    write_csv(
        folder / "pokemon_evolution.csv",
        [
            "id",
            "evolved_species_id",
            "evolution_trigger_id",
            "minimum_level",
            "known_move_id",
            "held_item_id",
            "minimum_happiness",
            "time_of_day",
        ],
        [(i, *row) for i, row in enumerate(EVOLUTIONS, start=1)],
    )
    return folder


@pytest.fixture
def csv_writer() -> Callable[[Path, list[str], list[tuple]], None]:
    """The CSV writer the fixtures use, for tests that rewrite one table."""
    return write_csv


@pytest.fixture
def pokeapi_dir(tmp_path: Path) -> Path:
    """A fresh synthetic PokéAPI folder."""
    return write_pokeapi(tmp_path / "pokeapi")


@pytest.fixture
def kaggle_table(tmp_path: Path) -> Path:
    """A Kaggle-style table: UTF-16 with BOM, tab-separated, ending in half a code unit."""
    header = "national_number\tgen\tenglish_name\tprimary_type\tdescription"
    rows = [
        "6\tI\tCharizard\tfire\tIt spits fire that is hot enough to melt boulders.",
        '122\tI\tMr. Mime\tpsychic\t"A pantomime expert, it builds\tinvisible walls."',
        "29\tI\tNidoran♀\tpoison\tIts poison barbs are small.",
        "592\tV\tFrillish\twater\t",
    ]
    data = ("\r\n".join([header, *rows]) + "\r\n").encode("utf-16")
    path = tmp_path / "kaggle.csv"
    path.write_bytes(data[:-1])  # the real export is cut one byte short
    return path
