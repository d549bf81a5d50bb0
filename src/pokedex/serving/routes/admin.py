"""Admin: swap the served model. Mounted only when an admin token is configured."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pokedex.core.schemas import (
    ErrorBody,
    ReloadRequest,
    ReloadResponse,
    UnprocessableBody,
)
from pokedex.serving.errors import ApiError
from pokedex.serving.model import check_reload_ref, load_model
from pokedex.serving.state import StateDep

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)
_DETAIL_CHARS = 500


def require_admin(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries the admin bearer token."""
    token = state.settings.admin_token
    given = credentials.credentials if credentials is not None else ""
    # constant-time comparison: the token must not leak through response timing
    if token is None or not secrets.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        raise ApiError(
            401, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"}
        )


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        400: {"model": ErrorBody},
        401: {"model": ErrorBody},
        409: {"model": ErrorBody},
        422: {"model": UnprocessableBody},
    },
)


@router.post("/reload", response_model=ReloadResponse)
async def reload_model(body: ReloadRequest, state: StateDep) -> ReloadResponse:
    """Load another model and swap it in atomically; a failed load keeps the current one."""
    if state.settings.workers > 1:
        # a request reaches one worker: the others would go on serving the old model
        raise ApiError(
            409,
            f"this server runs {state.settings.workers} workers and a reload would reach only "
            "one: restart it with the new POKEDEX_MODEL (a rolling restart), or run one worker",
        )
    try:
        ref = check_reload_ref(body.model, state.settings.model_roots)
    except ValueError as exc:
        state.metrics.reloads.labels(result="refused").inc()
        raise ApiError(400, str(exc)) from exc
    settings = state.settings
    async with state.reload_lock:
        previous = state.model
        try:
            model = await asyncio.to_thread(
                load_model, ref, settings.variant, settings.threads, settings.runtime
            )
        except Exception as exc:
            state.metrics.reloads.labels(result="failed").inc()
            log.warning("reload of %r failed, still serving the previous model: %s", ref, exc)
            raise ApiError(422, f"cannot load the model: {exc}"[:_DETAIL_CHARS]) from exc
        state.set_model(model)
    state.metrics.reloads.labels(result="ok").inc()
    log.info("reloaded model: now serving %s", model.bundle.name)
    return ReloadResponse(previous=previous.ref if previous else None, current=model.ref)
