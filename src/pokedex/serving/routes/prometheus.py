"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pokedex.serving.state import StateDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(state: StateDep) -> Response:
    """Every metric of this app (of all its workers) in the Prometheus text format."""
    state.metrics.queue_depth.set(state.batcher.depth)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
