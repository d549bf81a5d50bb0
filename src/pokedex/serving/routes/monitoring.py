"""Drift of the served model's inputs and outputs against its reference profile."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from pokedex.core.schemas import ErrorBody
from pokedex.errors import PokedexError
from pokedex.monitoring.check import NoReferenceError
from pokedex.monitoring.drift import DriftReport
from pokedex.monitoring.window import parse_window
from pokedex.serving.errors import ApiError
from pokedex.serving.state import ModelDep, StateDep

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

WINDOW_CHARS = 16
WindowQuery = Annotated[
    str | None,
    Query(
        description="the last N predictions (500) or a duration (30m, 6h, 7d), at most "
        f"{WINDOW_CHARS} characters; default: the server's POKEDEX_DRIFT_WINDOW",
    ),
]


@router.get(
    "/drift",
    response_model=DriftReport,
    responses={status: {"model": ErrorBody} for status in (404, 422, 503)},
)
async def get_drift(state: StateDep, model: ModelDep, window: WindowQuery = None) -> DriftReport:
    """Per-feature drift tests of recent predictions against the model's reference, and the
    overall verdict (``drift``, ``no_drift`` or ``insufficient_data``)."""
    # checked here, not by Query(max_length=...): every 422 of this route is an ErrorBody
    if window is not None and len(window) > WINDOW_CHARS:
        raise ApiError(422, f"window: at most {WINDOW_CHARS} characters")
    try:
        chosen = parse_window(window or state.settings.drift_window)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    if state.drift is None:
        raise ApiError(404, "the prediction log is off (POKEDEX_PREDICTION_LOG_URL is empty)")
    try:
        return await asyncio.to_thread(state.drift.check, model, chosen)
    except NoReferenceError as exc:
        raise ApiError(404, str(exc)) from exc
    except PokedexError as exc:  # the prediction log cannot be read
        raise ApiError(503, str(exc), {"Retry-After": "30"}) from exc
