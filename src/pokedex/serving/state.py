"""What one app holds while it runs, and the typed dependencies handlers read it through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from pokedex.serving.batching import MicroBatcher
from pokedex.serving.driftwatch import DriftMonitor
from pokedex.serving.errors import ApiError
from pokedex.serving.model import ServedModel
from pokedex.serving.prometheus import Metrics
from pokedex.serving.ratelimit import RateLimiter
from pokedex.serving.settings import Settings
from pokedex.store.feedback import FeedbackStore
from pokedex.store.predlog import PredictionLog


@dataclass
class ServingState:
    """The app's model, batcher, thread pool, prediction log and metrics."""

    settings: Settings
    metrics: Metrics
    batcher: MicroBatcher
    preprocess_pool: ThreadPoolExecutor | None  # None: images are decoded on the event loop
    predlog: PredictionLog | None = None
    drift: DriftMonitor | None = None  # None when the prediction log is off
    drift_task: asyncio.Task[None] | None = None  # the periodic check that refreshes the gauges
    model: ServedModel | None = None  # replaced whole on reload: readers never see half a model
    load_error: str | None = "the model is loading"
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # True once every worker of the server has loaded its model (one worker: always)
    peers_ready: Callable[[], bool] = lambda: True
    feedback: FeedbackStore | None = None  # verdicts and kept images; None when the log is off
    feedback_limiter: RateLimiter | None = None
    feedback_inflight: int = 0  # verdicts being written now (the event loop alone counts)
    feedback_task: asyncio.Task[None] | None = None  # refreshes the accuracy-by-feedback gauges

    def set_model(self, model: ServedModel) -> None:
        """Serve ``model`` from now on (in-flight requests finish on the one they started with)."""
        self.model = model
        self.load_error = None
        ref = model.ref
        self.metrics.set_model(ref.name, ref.version, ref.variant)


async def get_state(request: Request) -> ServingState:
    """The state of the app serving this request (503 if its lifespan has not started it)."""
    state: ServingState | None = getattr(request.app.state, "serving", None)
    if state is None:
        raise ApiError(503, "the server is starting", {"Retry-After": "5"})
    return state


async def get_model(state: Annotated[ServingState, Depends(get_state)]) -> ServedModel:
    """The model serving now; 503 with the reason when none is loaded."""
    if state.model is None:
        raise ApiError(503, f"model not ready: {state.load_error}", {"Retry-After": "5"})
    return state.model


async def get_request_id(request: Request) -> str:
    """The id the request middleware gave this request."""
    rid: str = request.scope.get("state", {}).get("request_id", "")
    return rid


StateDep = Annotated[ServingState, Depends(get_state)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
ModelDep = Annotated[ServedModel, Depends(get_model)]
