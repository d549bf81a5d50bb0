"""The served model's identity and quality figures."""

from __future__ import annotations

from fastapi import APIRouter

from pokedex.serving.schemas import ErrorBody, ModelInfo
from pokedex.serving.state import ModelDep

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.get("", response_model=ModelInfo, responses={503: {"model": ErrorBody}})
def get_model_info(model: ModelDep) -> ModelInfo:
    """Name, version, variant, classes, input size, open-set rule and metrics."""
    return model.info()
