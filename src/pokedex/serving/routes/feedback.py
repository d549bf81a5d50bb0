"""Feedback: a verdict on a prediction, and how often recent verdicts agree with the model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pokedex.core.schemas import (
    ErrorBody,
    FeedbackAccuracy,
    FeedbackRequest,
    FeedbackResponse,
    UnprocessableBody,
)
from pokedex.monitoring.window import parse_window
from pokedex.serving import verdicts
from pokedex.serving.errors import ApiError
from pokedex.serving.state import ModelDep, StateDep

FEEDBACK_PATH = "/v1/feedback"
MAX_BODY_BYTES = 4096  # a verdict is a UUID and a name: anything bigger is not one
WINDOW_CHARS = 16

router = APIRouter(tags=["feedback"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    # 400: a body that is not UTF-8 JSON at all
    **{status: {"model": ErrorBody} for status in (400, 404, 409, 413, 429, 503)},
    422: {"model": UnprocessableBody},
}


async def limit_rate(request: Request, state: StateDep) -> None:
    """429 + Retry-After once this client has sent its share of verdicts."""
    client = request.client.host if request.client else "unknown"
    verdicts.check_rate(state, client)


@router.post(
    FEEDBACK_PATH,
    status_code=201,
    response_model=FeedbackResponse,
    responses=_ERRORS,
    dependencies=[Depends(limit_rate)],
)
async def post_feedback(
    body: FeedbackRequest, state: StateDep, model: ModelDep
) -> FeedbackResponse:
    """Say what the picture behind a prediction shows: ``correct``, ``not_pokemon`` or a
    species name. One verdict per prediction (409 for a second); 404 for an unknown id; 429
    with Retry-After when a client sends too many."""
    return await verdicts.submit(state, model, body)


@router.get(
    "/v1/monitoring/feedback",
    response_model=FeedbackAccuracy,
    responses={status: {"model": ErrorBody} for status in (404, 422, 503)},
)
async def get_feedback_accuracy(
    state: StateDep,
    window: Annotated[
        str | None,
        Query(
            description="the last N verdicts (500) or a duration (30m, 6h, 7d), at most "
            f"{WINDOW_CHARS} characters; default: the server's POKEDEX_FEEDBACK_WINDOW",
        ),
    ] = None,
) -> FeedbackAccuracy:
    """Accuracy-by-feedback: the share of recent verdicts that agree with the model's answer,
    and the count of each kind of verdict."""
    if window is not None and len(window) > WINDOW_CHARS:
        raise ApiError(422, f"window: at most {WINDOW_CHARS} characters")
    try:
        chosen = parse_window(window or state.settings.feedback_window)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    return await verdicts.accuracy(state, chosen)
