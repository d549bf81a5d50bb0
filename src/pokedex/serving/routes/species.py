"""Pokédex entries of the species the model knows, and their pictures from the user's data."""

from __future__ import annotations

import functools
import logging
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from pokedex.core.schemas import (
    ErrorBody,
    SpeciesInfo,
    SpeciesList,
    SpeciesSummary,
    Weakness,
)
from pokedex.data.gallery import MANIFEST, GalleryEntry, read_gallery
from pokedex.dex.catalog import normalize_name
from pokedex.errors import PokedexError
from pokedex.serving.errors import ApiError
from pokedex.serving.state import ModelDep, StateDep

log = logging.getLogger(__name__)
IMAGE_CACHE = "public, max-age=86400"  # a species' picture changes only when the gallery is rebuilt

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
    """Types, stats, entry, size, abilities, evolution line and matchups (404 if unknown)."""
    species = model.species(name)
    if species is None:
        raise ApiError(404, f"unknown species {name!r}")
    types = list(species.types)
    multipliers = model.typechart.multipliers(types) if model.typechart is not None else []
    return SpeciesInfo(
        name=species.name,
        display_name=species.display_name,
        national_number=species.national_number,
        generation=species.generation,
        types=types,
        stats=dict(species.stats),
        description=species.description,
        weaknesses=model.weaknesses(types),
        height_m=species.height_m,
        weight_kg=species.weight_kg,
        abilities=list(species.abilities),
        evolution=list(species.evolution),
        multipliers=[Weakness(type=t, multiplier=m) for t, m in multipliers],
    )


@router.get(
    "/{name}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}, "description": "the species' picture"},
        304: {"description": "the picture the client holds is current"},
        404: {"model": ErrorBody},
    },
)
def get_species_image(
    name: Annotated[str, Path(max_length=100)], request: Request, state: StateDep
) -> Response:
    """One picture of the species, from the gallery of the user's own data (404 if none)."""
    folder, gallery = _gallery(state.settings.gallery)
    entry = gallery.get(name) or gallery.get(normalize_name(name))
    if entry is None:
        raise ApiError(404, f"no picture of {name!r} in the species gallery")
    etag = f'"{entry.sha256[:32]}"'
    headers = {"Cache-Control": IMAGE_CACHE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    # entry.file is a plain file name (read_gallery checks it): no path from the request is used
    try:
        data = (folder / entry.file).read_bytes()
    except OSError as exc:
        raise ApiError(404, f"the picture of {name!r} is missing from the gallery") from exc
    return Response(data, media_type="image/webp", headers=headers)


def _gallery(folder: str) -> tuple[FilePath, dict[str, GalleryEntry]]:
    """The gallery's folder and entries, re-read only when its manifest changes."""
    missing = "this API has no species pictures: build them with `pokedex data gallery`"
    if not folder:
        raise ApiError(404, missing)
    try:
        stamp = (FilePath(folder) / MANIFEST).stat().st_mtime_ns
    except OSError as exc:
        raise ApiError(404, missing) from exc
    try:
        return FilePath(folder), _read_gallery(folder, stamp)
    except PokedexError as exc:
        log.error("%s", exc)
        raise ApiError(500, "the species gallery is unreadable: rebuild it") from exc


@functools.lru_cache(maxsize=4)
def _read_gallery(folder: str, stamp: int) -> dict[str, GalleryEntry]:
    """``stamp`` (the manifest's mtime) is only a cache key: a rebuilt gallery is read again."""
    return read_gallery(FilePath(folder))
