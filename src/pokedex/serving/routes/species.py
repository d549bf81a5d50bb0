"""Pokédex entries of the species the model knows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from pokedex.serving.errors import ApiError
from pokedex.serving.schemas import ErrorBody, SpeciesInfo, SpeciesList, SpeciesSummary
from pokedex.serving.state import ModelDep

router = APIRouter(prefix="/v1/species", tags=["dex"])


@router.get("", response_model=SpeciesList, responses={503: {"model": ErrorBody}})
def search_species(
    model: ModelDep,
    q: Annotated[str, Query(max_length=100, description="part of a name, or a number")] = "",
    limit: Annotated[int, Query(ge=1, le=2000, description="most items to return")] = 50,
) -> SpeciesList:
    """Search the species by name or national number; an empty ``q`` lists them all."""
    total, hits = model.search(q, limit)
    items = [
        SpeciesSummary(
            name=s.name,
            display_name=s.display_name,
            national_number=s.national_number,
            types=list(s.types),
        )
        for s in hits
    ]
    return SpeciesList(total=total, items=items)


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
