"""Example pictures to click on the Recognize page: species pictures the API serves.

The dataset's sprites may not ship with the UI, so the examples are the species gallery the
user built from their own data (``pokedex data gallery``, served at
``GET /v1/species/{name}/image``); an API without a gallery has no examples, and the page says
so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pokedex.core.schemas import SpeciesSummary
from pokedex.ui import session
from pokedex.ui.api import PokedexApi

COUNT = 6
# species most people can name, tried first; the rest come evenly from the whole Pokédex
FAVOURITES = ("pikachu", "charmander", "bulbasaur", "squirtle", "eevee", "gengar")
MAX_TRIES = 2 * COUNT  # pictures asked for before giving up: a gallery usually has them all


@dataclass(frozen=True)
class Example:
    """One example: the species it shows and its picture's bytes (WebP)."""

    name: str
    display_name: str
    data: bytes


def candidates(index: Sequence[SpeciesSummary], count: int) -> list[SpeciesSummary]:
    """Up to ``count`` species to try, favourites the model knows first, then species spread
    evenly over the Pokédex, each once."""
    by_name = {s.name: s for s in index}
    picked = [by_name[name] for name in FAVOURITES if name in by_name][:count]
    rest = [s for s in index if s.name not in set(FAVOURITES)]
    wanted = min(count - len(picked), len(rest))
    if wanted > 0:
        step = len(rest) / wanted
        picked += [rest[int(i * step)] for i in range(wanted)]
    return picked


def examples(client: PokedexApi) -> list[Example]:
    """Up to :data:`COUNT` examples the API has pictures for (none without a gallery); the
    index and the pictures are the session's cached reads."""
    found = []
    for species in candidates(session.species_index(client), MAX_TRIES):
        data = session.species_image(client, species.name)
        if data is not None:
            found.append(Example(species.name, species.display_name, data))
        if len(found) == COUNT:
            break
    return found
