"""Type chart: loading from PokéAPI, dual-type arithmetic, serialisation, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pokedex.dex import TYPES, TypeChart, UnknownTypeError
from pokedex.errors import PokedexError


@pytest.fixture
def chart(pokeapi_dir: Path) -> TypeChart:
    return TypeChart.from_pokeapi(pokeapi_dir)


def test_types_are_the_18_in_pokeapi_id_order() -> None:
    assert len(TYPES) == 18
    assert TYPES[0] == "normal"
    assert TYPES[-1] == "fairy"
    assert TYPES.index("steel") == 8  # PokéAPI id 9


def test_from_pokeapi_reads_factors_and_skips_extra_types(chart: TypeChart) -> None:
    assert set(chart.factors) == set(TYPES)
    assert chart.factors["water"]["fire"] == 2.0
    assert chart.factors["fire"]["water"] == 0.5
    assert chart.factors["normal"]["ghost"] == 0.0
    assert chart.factors["normal"]["normal"] == 1.0
    assert "stellar" not in chart.factors


@pytest.mark.parametrize(
    ("attack", "defender", "expected"),
    [
        ("rock", ["fire", "flying"], 4.0),
        ("bug", ["fire", "flying"], 0.25),
        ("electric", ["ground", "flying"], 0.0),  # immunity beats the x2 on flying
        ("ice", ["ground", "flying"], 4.0),
        ("water", ["fire", "water"], 2.0),
        ("fire", ["grass", "water"], 1.0),  # x2 * x0.5
        ("water", ["fire"], 2.0),
        ("fire", ["water"], 0.5),
        ("normal", ["normal"], 1.0),
    ],
)
def test_multiplier_combines_dual_types(
    chart: TypeChart, attack: str, defender: list[str], expected: float
) -> None:
    assert chart.multiplier(attack, defender) == expected


def test_multiplier_accepts_a_bare_type_string_and_any_case(chart: TypeChart) -> None:
    assert chart.multiplier("Water", "FIRE") == 2.0


def test_defense_profile_covers_every_attack_in_order(chart: TypeChart) -> None:
    profile = chart.defense_profile(("ground", "flying"))
    assert list(profile) == list(TYPES)
    assert profile["electric"] == 0.0
    assert profile["ice"] == 4.0
    assert profile["normal"] == 1.0


def test_weaknesses_sorted_by_multiplier_then_type_order(chart: TypeChart) -> None:
    # fire/flying: rock x4, water x2, electric x2 (water comes before electric in TYPES)
    assert chart.weaknesses(["fire", "flying"]) == [
        ("rock", 4.0),
        ("water", 2.0),
        ("electric", 2.0),
    ]
    assert chart.weaknesses(["normal"]) == []


def test_multipliers_list_every_non_neutral_factor_strongest_first(chart: TypeChart) -> None:
    # fire/flying: rock x4, water and electric x2, bug x0.5 x0.5 = x1/4, ground x2 x0 = x0;
    # ice (x0.5 on fire, x2 on flying) cancels out to x1 and is left out
    assert chart.multipliers(["fire", "flying"]) == [
        ("rock", 4.0),
        ("water", 2.0),
        ("electric", 2.0),
        ("bug", 0.25),
        ("ground", 0.0),
    ]
    assert chart.multipliers(["ghost"]) == [("ghost", 2.0), ("normal", 0.0)]
    assert chart.multipliers(["normal"]) == []


def test_matchups_lists_attack_and_defense_buckets(chart: TypeChart) -> None:
    result = chart.matchups("Ghost")
    assert result == {
        "type": "ghost",
        "attack": {"x2": ["ghost"], "x0.5": [], "x0": []},
        "defense": {"x2": ["ghost"], "x0.5": [], "x0": ["normal"]},
    }
    fire = chart.matchups("fire")
    assert fire["attack"]["x2"] == ["grass"]
    assert fire["defense"]["x2"] == ["ground", "rock", "water"]
    assert fire["defense"]["x0.5"] == ["bug", "ice"]


def test_round_trip_through_json(chart: TypeChart) -> None:
    text = json.dumps(chart.to_dict(), sort_keys=True)
    again = TypeChart.from_dict(json.loads(text))
    assert again == chart
    assert again.to_dict() == chart.to_dict()
    assert hash(again) == hash(chart)
    assert again.multiplier("rock", ["fire", "flying"]) == 4.0


def test_chart_is_immutable(chart: TypeChart) -> None:
    with pytest.raises(AttributeError):
        chart.factors = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        chart.factors["fire"]["grass"] = 0.0  # type: ignore[index]


def test_unknown_type_names_the_value_and_lists_valid_ones(chart: TypeChart) -> None:
    with pytest.raises(UnknownTypeError, match="'fyre'") as info:
        chart.multiplier("fyre", ["grass"])
    assert "normal" in str(info.value)
    assert "fairy" in str(info.value)
    assert isinstance(info.value, PokedexError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownTypeError, match="'shadow'"):
        chart.weaknesses(["fire", "shadow"])
    with pytest.raises(UnknownTypeError, match="'stellar'"):
        chart.matchups("stellar")


@pytest.mark.parametrize("defender", [[], ["fire", "fire"], ["fire", "water", "grass"]])
def test_defender_needs_one_or_two_distinct_types(chart: TypeChart, defender: list[str]) -> None:
    with pytest.raises(PokedexError, match="1 or 2"):
        chart.multiplier("water", defender)


def test_from_dict_rejects_missing_pairs_and_bad_factors(chart: TypeChart) -> None:
    data = chart.to_dict()
    del data["factors"]["fire"]["grass"]
    with pytest.raises(PokedexError, match="fire -> grass"):
        TypeChart.from_dict(data)
    data = chart.to_dict()
    data["factors"]["fire"]["grass"] = 3
    with pytest.raises(PokedexError, match="fire -> grass"):
        TypeChart.from_dict(data)
    data = chart.to_dict()
    data["factors"]["fire"]["grass"] = True
    with pytest.raises(PokedexError, match="fire -> grass"):
        TypeChart.from_dict(data)
    with pytest.raises(PokedexError, match="factors"):
        TypeChart.from_dict({"types": list(TYPES)})


@pytest.mark.parametrize("missing", ["types.csv", "type_efficacy.csv"])
def test_missing_table_names_the_file(pokeapi_dir: Path, missing: str) -> None:
    (pokeapi_dir / missing).unlink()
    with pytest.raises(PokedexError, match=missing):
        TypeChart.from_pokeapi(pokeapi_dir)


def test_incomplete_efficacy_table_is_rejected(pokeapi_dir: Path) -> None:
    path = pokeapi_dir / "type_efficacy.csv"
    fire_vs_grass = f"{TYPES.index('fire') + 1},{TYPES.index('grass') + 1},"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(fire_vs_grass)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PokedexError, match=r"type_efficacy\.csv.*fire -> grass"):
        TypeChart.from_pokeapi(pokeapi_dir)
