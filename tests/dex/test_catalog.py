"""Species catalog: name resolution, descriptions, save/load, errors; plus a real-data check."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from pokedex.dex import (
    Ability,
    Species,
    TypeChart,
    build_catalog,
    load_catalog,
    load_descriptions,
    normalize_name,
    save_catalog,
)
from pokedex.errors import PokedexError
from tests.dex.facts import CHARMANDER_LINE

CsvWriter = Callable[[Path, list[str], list[tuple]], None]
REQUIRED_TABLES = [
    "pokemon.csv",
    "pokemon_species.csv",
    "pokemon_forms.csv",
    "pokemon_species_names.csv",
    "pokemon_types.csv",
    "pokemon_form_types.csv",
    "types.csv",
    "pokemon_stats.csv",
    "stats.csv",
    "abilities.csv",
    "ability_names.csv",
    "pokemon_abilities.csv",
    "pokemon_evolution.csv",
    "evolution_triggers.csv",
]


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Mr. Mime", "mr-mime"),
        ("Mime Jr.", "mime-jr"),
        ("Nidoran♀", "nidoran-f"),
        ("Nidoran♂", "nidoran-m"),
        ("Farfetch’d", "farfetchd"),
        ("Flabébé", "flabebe"),
        ("Type: Null", "type-null"),
        ("  Ho-Oh ", "ho-oh"),
        ("porygon-z", "porygon-z"),
    ],
)
def test_normalize_name_folds_punctuation_accents_and_gender_signs(raw: str, folded: str) -> None:
    assert normalize_name(raw) == folded


def test_build_resolves_pokemon_identifiers(pokeapi_dir: Path) -> None:
    catalog, unresolved = build_catalog(["charizard"], pokeapi_dir)
    assert unresolved == []
    assert catalog["charizard"] == Species(
        name="charizard",
        display_name="Charizard",
        national_number=6,
        pokeapi_id=6,
        types=("fire", "flying"),
        stats={
            "hp": 78,
            "attack": 84,
            "defense": 78,
            "special-attack": 109,
            "special-defense": 85,
            "speed": 100,
        },
        generation=1,
        height_m=1.7,
        weight_kg=90.5,
        abilities=(
            Ability(name="Blaze"),
            Ability(name="Speed Boost"),  # no English name in the table: from its identifier
            Ability(name="Solar Power", hidden=True),
        ),
        evolution=CHARMANDER_LINE,
    )


def test_evolution_lines_say_how_each_stage_evolves(pokeapi_dir: Path) -> None:
    catalog, _ = build_catalog(["farfetchd", "mr-mime", "gliscor"], pokeapi_dir)
    assert [(s.name, s.evolves_from, s.how) for s in catalog["farfetchd"].evolution] == [
        ("farfetchd", None, None),
        ("sirfetchd", "farfetchd", "land three critical hits in one battle"),
    ]
    mime_jr, mr_mime = catalog["mr-mime"].evolution
    assert (mime_jr.display_name, mr_mime.evolves_from) == ("Mime Jr.", "mime-jr")
    assert mr_mime.how == (
        "level up knowing a certain move or level up with high friendship at night "
        "or trade holding an item"
    )
    # a species that never evolves has a line of one; sizes default to 1 m and 10 kg here
    assert [s.name for s in catalog["gliscor"].evolution] == ["gliscor"]
    assert (catalog["gliscor"].height_m, catalog["gliscor"].weight_kg) == (1.0, 10.0)
    assert catalog["gliscor"].abilities == ()


def test_a_version_1_catalog_loads_without_the_new_facts(pokeapi_dir: Path, tmp_path: Path) -> None:
    catalog, _ = build_catalog(["charizard"], pokeapi_dir)
    path = tmp_path / "catalog.json"
    save_catalog(catalog, path)
    data = json.loads(path.read_text())
    assert data["version"] == 2
    old = dict(data["species"]["charizard"])
    for new in ("height_m", "weight_kg", "abilities", "evolution"):
        del old[new]
    path.write_text(json.dumps({"version": 1, "species": {"charizard": old}}))
    loaded = load_catalog(path)["charizard"]
    assert loaded.types == ("fire", "flying")
    assert (loaded.height_m, loaded.weight_kg, loaded.abilities, loaded.evolution) == (
        None,
        None,
        (),
        (),
    )
    path.write_text(json.dumps({"version": 3, "species": {}}))
    with pytest.raises(PokedexError, match="version"):
        load_catalog(path)


def test_species_identifier_resolves_to_its_default_pokemon(pokeapi_dir: Path) -> None:
    catalog, unresolved = build_catalog(["frillish"], pokeapi_dir)
    assert unresolved == []
    frillish = catalog["frillish"]
    assert frillish.pokeapi_id == 592  # not the non-default variant listed first
    assert frillish.national_number == 592
    assert frillish.types == ("water", "ghost")
    assert frillish.generation == 5


def test_form_identifier_resolves_with_the_forms_own_types(pokeapi_dir: Path) -> None:
    catalog, _ = build_catalog(["arceus-fire", "frillish-female", "arceus"], pokeapi_dir)
    assert catalog["arceus-fire"].pokeapi_id == 493
    assert catalog["arceus-fire"].types == ("fire",)
    assert catalog["arceus"].types == ("normal",)
    assert catalog["frillish-female"].pokeapi_id == 592
    assert catalog["frillish-female"].types == ("water", "ghost")


def test_display_names_and_punctuation_variants_resolve(pokeapi_dir: Path) -> None:
    names = ["Mr. Mime", "mr_mime", "Nidoran♀", "Farfetch'd", "CHARIZARD"]
    catalog, unresolved = build_catalog(names, pokeapi_dir)
    assert unresolved == []
    assert catalog["Mr. Mime"].pokeapi_id == 122
    assert catalog["Mr. Mime"].display_name == "Mr. Mime"
    assert catalog["mr_mime"].pokeapi_id == 122
    assert catalog["Nidoran♀"].pokeapi_id == 29
    assert catalog["Farfetch'd"].display_name == "Farfetch’d"
    assert catalog["CHARIZARD"].name == "CHARIZARD"  # the key is the class label as given


def test_unmatched_names_are_reported_in_order(
    pokeapi_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        catalog, unresolved = build_catalog(
            ["missingno", "charizard", "arceus-unknown", "nidoran"], pokeapi_dir
        )
    assert list(catalog) == ["charizard"]
    # arceus-unknown matches a form whose typing ("unknown") is not a real type.
    assert unresolved == ["missingno", "arceus-unknown", "nidoran"]
    assert "missingno" in caplog.text
    assert "arceus-unknown" in caplog.text


def test_slot_order_and_only_the_six_stats(pokeapi_dir: Path) -> None:
    catalog, _ = build_catalog(["farfetchd"], pokeapi_dir)
    assert catalog["farfetchd"].types == ("normal", "flying")  # the file lists slot 2 first
    assert list(catalog["farfetchd"].stats) == [
        "hp",
        "attack",
        "defense",
        "special-attack",
        "special-defense",
        "speed",
    ]


def test_english_name_taken_from_language_9(pokeapi_dir: Path) -> None:
    catalog, _ = build_catalog(["gliscor"], pokeapi_dir)
    assert catalog["gliscor"].display_name == "Gliscor"


@pytest.mark.parametrize("missing", REQUIRED_TABLES)
def test_missing_table_names_the_file(pokeapi_dir: Path, missing: str) -> None:
    (pokeapi_dir / missing).unlink()
    with pytest.raises(PokedexError, match=missing):
        build_catalog(["charizard"], pokeapi_dir)


def test_table_without_a_needed_column_is_named(pokeapi_dir: Path, csv_writer: CsvWriter) -> None:
    csv_writer(pokeapi_dir / "pokemon.csv", ["id", "identifier"], [(6, "charizard")])
    with pytest.raises(PokedexError, match=r"pokemon\.csv.*species_id"):
        build_catalog(["charizard"], pokeapi_dir)


def test_malformed_table_value_is_a_clean_error(pokeapi_dir: Path, csv_writer: CsvWriter) -> None:
    header = ["id", "identifier", "species_id", "height", "weight", "is_default"]
    csv_writer(pokeapi_dir / "pokemon.csv", header, [("six", "charizard", 6, 17, 905, 1)])
    with pytest.raises(PokedexError, match="malformed PokéAPI table"):
        build_catalog(["charizard"], pokeapi_dir)


def test_load_descriptions_reads_the_utf16_kaggle_table(kaggle_table: Path) -> None:
    texts = load_descriptions(kaggle_table)
    assert texts["charizard"] == "It spits fire that is hot enough to melt boulders."
    assert texts["mr-mime"] == "A pantomime expert, it builds invisible walls."
    assert texts["nidoran-f"] == "Its poison barbs are small."
    assert "frillish" not in texts  # an empty description is no description


def test_load_descriptions_reads_plain_utf8_csv(tmp_path: Path, csv_writer: CsvWriter) -> None:
    path = tmp_path / "d.csv"
    csv_writer(path, ["name", "description"], [("Farfetch'd", "Carries a leek.")])
    assert load_descriptions(path) == {"farfetchd": "Carries a leek."}


def test_load_descriptions_errors_name_the_problem(tmp_path: Path, csv_writer: CsvWriter) -> None:
    with pytest.raises(PokedexError, match="not found"):
        load_descriptions(tmp_path / "absent.csv")
    path = tmp_path / "d.csv"
    csv_writer(path, ["name", "text"], [("Pikachu", "Electric mouse.")])
    with pytest.raises(PokedexError, match="description"):
        load_descriptions(path)


def test_build_attaches_descriptions(pokeapi_dir: Path, kaggle_table: Path) -> None:
    names = ["charizard", "mr-mime", "nidoran-f", "frillish"]
    catalog, _ = build_catalog(names, pokeapi_dir, kaggle_table)
    assert catalog["charizard"].description.startswith("It spits fire")
    assert catalog["mr-mime"].description.startswith("A pantomime expert")
    assert catalog["nidoran-f"].description == "Its poison barbs are small."
    assert catalog["frillish"].description is None


def test_save_load_round_trip_and_stable_bytes(
    pokeapi_dir: Path, kaggle_table: Path, tmp_path: Path
) -> None:
    catalog, _ = build_catalog(["mr-mime", "charizard", "Nidoran♀"], pokeapi_dir, kaggle_table)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    save_catalog(catalog, first)
    save_catalog(dict(reversed(catalog.items())), second)
    assert first.read_bytes() == second.read_bytes()
    assert "Nidoran♀" in first.read_text(encoding="utf-8")  # stored readable, not \u-escaped
    assert load_catalog(first) == catalog
    assert list(tmp_path.glob(".*tmp")) == []  # no temporary left behind


def test_save_without_descriptions(pokeapi_dir: Path, kaggle_table: Path, tmp_path: Path) -> None:
    catalog, _ = build_catalog(["charizard"], pokeapi_dir, kaggle_table)
    path = tmp_path / "catalog.json"
    save_catalog(catalog, path, with_descriptions=False)
    assert "description" not in path.read_text()
    loaded = load_catalog(path)
    assert loaded["charizard"].description is None
    assert loaded["charizard"].types == ("fire", "flying")


def test_load_catalog_rejects_bad_files(tmp_path: Path, pokeapi_dir: Path) -> None:
    path = tmp_path / "catalog.json"
    with pytest.raises(PokedexError, match="not found"):
        load_catalog(path)
    path.write_text("{not json")
    with pytest.raises(PokedexError, match=r"catalog\.json"):
        load_catalog(path)
    catalog, _ = build_catalog(["charizard"], pokeapi_dir)
    save_catalog(catalog, path)
    data = json.loads(path.read_text())
    data["species"]["charizard"]["types"] = ["fire", "lava"]
    path.write_text(json.dumps(data))
    with pytest.raises(PokedexError, match="charizard"):
        load_catalog(path)


def test_species_model_is_strict_and_frozen() -> None:
    good = {
        "name": "x",
        "display_name": "X",
        "national_number": 1,
        "pokeapi_id": 1,
        "types": ["Grass", "poison"],
        "stats": dict.fromkeys(
            ["hp", "attack", "defense", "special-attack", "special-defense", "speed"], 1
        ),
        "generation": 1,
    }
    species = Species.model_validate(good)
    assert species.types == ("grass", "poison")
    with pytest.raises(ValidationError):
        Species.model_validate({**good, "colour": "green"})
    with pytest.raises(ValidationError):
        Species.model_validate({**good, "types": []})
    with pytest.raises(ValidationError):
        Species.model_validate({**good, "stats": {"hp": 1}})
    with pytest.raises(ValidationError):
        species.name = "y"  # type: ignore[misc]


@pytest.mark.integration
def test_real_pokeapi_tables() -> None:
    """On the real export: the chart, charizard, and every dataset class name resolves."""
    folder = os.environ.get("POKEDEX_POKEAPI_DIR")
    if not folder:
        pytest.skip("set POKEDEX_POKEAPI_DIR to the PokéAPI CSV folder")
    chart = TypeChart.from_pokeapi(Path(folder))
    assert len(chart.factors) == 18
    catalog, unresolved = build_catalog(["charizard"], Path(folder))
    assert unresolved == []
    assert catalog["charizard"].types == ("fire", "flying")
    assert (catalog["charizard"].height_m, catalog["charizard"].weight_kg) == (1.7, 90.5)
    assert [s.how for s in catalog["charizard"].evolution] == [None, "level 16", "level 36"]
    assert Ability(name="Solar Power", hidden=True) in catalog["charizard"].abilities
    assert chart.weaknesses(catalog["charizard"].types)[0] == ("rock", 4.0)
    assert chart.multiplier("electric", ["ground", "flying"]) == 0.0

    names_file = os.environ.get("POKEDEX_CLASS_NAMES_FILE")
    if not names_file:
        pytest.skip("set POKEDEX_CLASS_NAMES_FILE (one class name per line) for the full check")
    names = [n.strip() for n in Path(names_file).read_text().splitlines() if n.strip()]
    start = time.perf_counter()
    catalog, unresolved = build_catalog(names, Path(folder))
    elapsed = time.perf_counter() - start
    assert unresolved == []
    assert len(catalog) == len(set(names))
    assert elapsed < 2.0, f"building the catalog took {elapsed:.2f} s"
