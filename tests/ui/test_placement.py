"""A recognised picture is placed among its top species' points, weighted by probability."""

from __future__ import annotations

import pytest

from pokedex.core.schemas import EmbeddingMap, SpeciesScore
from pokedex.ui.placement import place

# pikachu's points around (0, 0) with one stray far away, charmander's around (10, 4)
MAP = EmbeddingMap(
    split="test",
    x=[-1.0, 0.0, 1.0, 50.0, 9.0, 11.0],
    y=[0.0, 1.0, -1.0, 50.0, 4.0, 4.0],
    species=["pikachu"] * 4 + ["charmander"] * 2,
    predicted=["pikachu"] * 4 + ["charmander"] * 2,
    types=[["electric"]] * 4 + [["fire"]] * 2,
)


def _scores(*pairs: tuple[str, float]) -> list[SpeciesScore]:
    return [
        SpeciesScore(name=n, display_name=n.title(), national_number=None, probability=p)
        for n, p in pairs
    ]


def test_a_sure_answer_lands_on_its_species_centre() -> None:
    placed = place(MAP, _scores(("pikachu", 1.0)))
    assert placed is not None
    # the median ignores the stray point at (50, 50); a mean would be pulled to (12.5, 12.5)
    assert (placed.x, placed.y) == (0.5, 0.5)


def test_an_unsure_answer_lands_between_its_species_by_probability() -> None:
    placed = place(MAP, _scores(("pikachu", 0.6), ("charmander", 0.2)))
    assert placed is not None
    # weights renormalised over the species on the map: 3/4 pikachu, 1/4 charmander
    assert placed.x == pytest.approx(0.75 * 0.5 + 0.25 * 10)
    assert placed.y == pytest.approx(0.75 * 0.5 + 0.25 * 4)
    assert [(p.species, p.probability) for p in placed.pulls] == [
        ("pikachu", 0.6),
        ("charmander", 0.2),
    ]


def test_species_without_points_do_not_pull() -> None:
    placed = place(MAP, _scores(("mew", 0.5), ("charmander", 0.3), ("pikachu", 0.0)))
    assert placed is not None
    assert (placed.x, placed.y) == (10.0, 4.0)
    assert [p.species for p in placed.pulls] == ["charmander"]


def test_no_place_when_the_map_has_none_of_the_species() -> None:
    assert place(MAP, _scores(("mew", 0.9), ("mewtwo", 0.1))) is None
