"""Pokédex entries of the species the model knows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pokedex.serving.errors import ApiError
from pokedex.serving.schemas import ErrorBody, SpeciesInfo
from pokedex.serving.state import ModelDep

router = APIRouter(prefix="/v1/species", tags=["dex"])


@router.get(
    "/{name}",
    response_model=SpeciesInfo,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_species(name: Annotated[str, Path(max_length=100)], model: ModelDep) -> SpeciesInfo:
    """Types, base stats, entry and weaknesses of one species (404 if unknown)."""
    species = model.species(name)
    if species is None:
        raise ApiError(404, f"unknown species {name!r}")
    types = list(species.types)
    return SpeciesInfo(
        name=species.name,
        display_name=species.display_name,
        national_number=species.national_number,
        generation=species.generation,
        types=types,
        stats=dict(species.stats),
        description=species.description,
        weaknesses=model.weaknesses(types),
    )
