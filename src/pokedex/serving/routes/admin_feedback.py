"""Admin side of the feedback loop: review verdicts, delete a kept image everywhere.
Mounted only when an admin token is configured, behind the same bearer check as reload."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from pokedex.core.schemas import (
    ErrorBody,
    ImageDeleted,
    ReviewRequest,
    ReviewResponse,
    UnprocessableBody,
)
from pokedex.errors import PokedexError
from pokedex.serving.errors import ApiError
from pokedex.serving.routes.admin import require_admin
from pokedex.serving.state import StateDep
from pokedex.store.erasure import NothingToDeleteError
from pokedex.store.feedback import FeedbackStore, UnknownPredictionError

_SHA256 = re.compile(r"[0-9a-f]{64}")

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        400: {"model": ErrorBody},  # a body that is not UTF-8 JSON at all
        401: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": UnprocessableBody},
        503: {"model": ErrorBody},
    },
)


def _store(state: StateDep) -> FeedbackStore:
    if state.feedback is None:
        raise ApiError(404, "the prediction log is off (POKEDEX_PREDICTION_LOG_URL is empty)")
    return state.feedback


@router.delete("/images/{key}", response_model=ImageDeleted)
async def delete_image(
    key: Annotated[str, Path(max_length=64, description="a prediction id or an image's sha256")],
    state: StateDep,
) -> ImageDeleted:
    """Delete a kept image everywhere: its stored copy, every prediction's link to it, and the
    raw uploads logged with those predictions. 404 when nothing matches."""
    store = _store(state)
    target: uuid.UUID | str
    if _SHA256.fullmatch(key.lower()):
        target = key.lower()
    else:
        try:
            target = uuid.UUID(key)
        except ValueError as exc:
            raise ApiError(
                422, "key: give a prediction id (UUID) or a sha256 (64 hex digits)"
            ) from exc
    try:
        gone = await asyncio.to_thread(store.delete_image, target)
    except NothingToDeleteError as exc:
        raise ApiError(404, str(exc)) from exc
    except PokedexError as exc:
        raise ApiError(503, str(exc), {"Retry-After": "30"}) from exc
    return ImageDeleted(
        sha256=gone.sha256,
        kept_images=gone.kept_images,
        links=gone.links,
        logged_images=gone.logged_images,
    )


@router.post("/feedback/{prediction_id}/review", response_model=ReviewResponse)
async def review_feedback(
    prediction_id: uuid.UUID, body: ReviewRequest, state: StateDep
) -> ReviewResponse:
    """Accept a verdict (`pokedex data feedback export` takes accepted ones) or reject it."""
    store = _store(state)
    try:
        await asyncio.to_thread(store.review, prediction_id, body.review)
    except UnknownPredictionError as exc:
        raise ApiError(404, str(exc)) from exc
    except PokedexError as exc:
        raise ApiError(503, str(exc), {"Retry-After": "30"}) from exc
    return ReviewResponse(prediction_id=prediction_id, review=body.review)
