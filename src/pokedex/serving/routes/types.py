"""Type matchups from the model bundle's type chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pokedex.core.schemas import ErrorBody, TypeMatchups
from pokedex.dex.typechart import UnknownTypeError
from pokedex.serving.errors import ApiError
from pokedex.serving.state import ModelDep

router = APIRouter(prefix="/v1/types", tags=["dex"])


@router.get(
    "/{type_name}",
    response_model=TypeMatchups,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_type(type_name: Annotated[str, Path(max_length=50)], model: ModelDep) -> TypeMatchups:
    """What this type hits and what hits it: buckets x2, x0.5 and x0 (404 if unknown)."""
    if model.typechart is None:
        raise ApiError(404, "this model bundle has no type chart")
    try:
        return TypeMatchups.model_validate(model.typechart.matchups(type_name))
    except UnknownTypeError as exc:
        raise ApiError(404, f"unknown type {type_name!r}") from exc
