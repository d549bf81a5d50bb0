"""The served model's identity and quality figures."""

from __future__ import annotations

from fastapi import APIRouter

from pokedex.core.schemas import EmbeddingMap, ErrorBody, ModelInfo
from pokedex.serving.errors import ApiError
from pokedex.serving.state import ModelDep

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.get("", response_model=ModelInfo, responses={503: {"model": ErrorBody}})
def get_model_info(model: ModelDep) -> ModelInfo:
    """Name, version, variant, classes, input size, open-set rule and metrics."""
    return model.info()


@router.get(
    "/embeddings",
    response_model=EmbeddingMap,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_embeddings(model: ModelDep) -> EmbeddingMap:
    """The 2-D embedding map stored in the bundle (404 when the bundle has none)."""
    if model.embeddings is None:
        raise ApiError(
            404,
            "this model bundle has no embedding map: run `pokedex evaluate --embeddings` "
            "on it to add one",
        )
    return model.embeddings
