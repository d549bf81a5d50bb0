"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pokedex.core.schemas import Health, Readiness
from pokedex.serving.state import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """200 while the process runs."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(state: StateDep) -> Readiness | JSONResponse:
    """200 when a model serves; 503 with the reason otherwise (e.g. the model failed to load,
    or this worker's peers are still loading theirs)."""
    if state.model is None:
        body = Readiness(status="unavailable", detail=state.load_error)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    if not state.peers_ready():
        body = Readiness(status="unavailable", detail="the other workers are loading the model")
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    return Readiness(status="ready", model=state.model.ref)
