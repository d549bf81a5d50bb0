"""Type colours: one per type, and badge text that stays readable on each."""

from __future__ import annotations

from pokedex.dex.colours import TYPE_COLOURS, text_colour
from pokedex.dex.typechart import TYPES


def test_every_type_has_a_colour() -> None:
    assert set(TYPE_COLOURS) == set(TYPES)


def test_text_colour_contrasts_with_the_badge() -> None:
    assert text_colour(TYPE_COLOURS["electric"]) == "#000000"  # yellow: dark text
    assert text_colour(TYPE_COLOURS["ice"]) == "#000000"
    assert text_colour(TYPE_COLOURS["ghost"]) == "#FFFFFF"  # purple: light text
    assert text_colour(TYPE_COLOURS["dragon"]) == "#FFFFFF"
    assert text_colour("#000000") == "#FFFFFF"
    assert text_colour("#FFFFFF") == "#000000"
