"""The app factory: assembles settings, lifespan, middleware, error handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from pokedex import __version__
from pokedex.errors import PokedexError
from pokedex.serving import verdicts
from pokedex.serving.batching import MicroBatcher
from pokedex.serving.driftwatch import DriftMonitor, watch
from pokedex.serving.errors import install_handlers
from pokedex.serving.middleware import BodyLimitMiddleware, RequestContextMiddleware
from pokedex.serving.model import load_model
from pokedex.serving.peers import Peers, RebalanceMiddleware
from pokedex.serving.prometheus import Metrics
from pokedex.serving.ratelimit import RateLimiter
from pokedex.serving.routes import (
    admin,
    admin_feedback,
    feedback,
    health,
    model,
    monitoring,
    predict,
    prometheus,
    species,
    types,
)
from pokedex.serving.settings import Settings
from pokedex.serving.state import ServingState
from pokedex.store.feedback import FeedbackStore
from pokedex.store.migrate import upgrade, upgrade_url
from pokedex.store.predlog import PredictionLog, default_journal

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs-assets"  # where /docs loads its script, style sheet and icon


def create_app(settings: Settings | None = None, peers: Peers | None = None) -> FastAPI:
    """A FastAPI app serving the model ``settings.model`` (settings from the env by default);
    ``peers``: the other workers of a multi-worker server, ready only once they all are."""
    settings = settings or Settings()
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _start(settings, app_metrics)
        if peers is not None:
            if state.model is not None:
                peers.loaded()
            state.peers_ready = peers.all_ready
        app.state.serving = state
        try:
            yield
        finally:
            await _stop(state)

    # /docs loads Swagger UI from the package, never from a CDN, so it works offline; no
    # /redoc, whose page fetches its logo from Redocly's CDN
    app = FastAPIOffline(
        title="Pokédex API",
        version=__version__,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        redoc_url=None,
    )
    install_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_upload_bytes,
        per_path={
            predict.BATCH_PATH: settings.max_batch_upload_bytes,
            feedback.FEEDBACK_PATH: feedback.MAX_BODY_BYTES,
        },
    )
    # added last, so outermost: it sees every answer, 413s included
    app.add_middleware(RequestContextMiddleware, metrics=app_metrics)
    if peers is not None and peers.shared is not None:
        app.add_middleware(RebalanceMiddleware, peers=peers)
    app.include_router(health.router)
    app.include_router(prometheus.router)
    app.include_router(predict.build_router(settings))
    app.include_router(species.router)
    app.include_router(types.router)
    app.include_router(model.router)
    app.include_router(monitoring.router)
    app.include_router(feedback.router)
    if settings.admin_token is not None:
        app.include_router(admin.router)
        app.include_router(admin_feedback.router)
    return app


async def _start(settings: Settings, app_metrics: Metrics) -> ServingState:
    """Start the workers, then load the model; a failed load leaves the API up but not ready."""
    batcher = MicroBatcher(
        app_metrics, settings.max_batch_size, settings.max_wait_ms, settings.max_queue
    )
    batcher.start()
    pool = None
    if settings.preprocess_threads:
        pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="pokedex-decode")
    predlog = None
    if settings.prediction_log_url:
        await _migrate(settings.prediction_log_url)

        def count_drop(reason: str, n: int) -> None:
            app_metrics.log_dropped.labels(reason=reason).inc(n)

        journal: str | Path | None = settings.prediction_journal or None
        if journal == "auto":
            journal = default_journal(settings.prediction_log_url)
        predlog = PredictionLog(
            settings.prediction_log_url,
            max_queue=settings.prediction_log_queue,
            on_drop=count_drop,
            schema=upgrade,
            journal=journal,
        )
        predlog.start()
    drift = None
    if settings.prediction_log_url:
        drift = DriftMonitor(settings.prediction_log_url, app_metrics, settings.drift_cache_s)
    state = ServingState(settings, app_metrics, batcher, pool, predlog, drift)
    if settings.prediction_log_url:
        state.feedback = FeedbackStore(settings.prediction_log_url)
        state.feedback_limiter = RateLimiter(
            settings.feedback_per_minute, settings.feedback_burst, settings.feedback_clients
        )
    try:
        loaded = await asyncio.to_thread(
            load_model, settings.model, settings.variant, settings.threads, settings.runtime
        )
    except Exception as exc:
        state.load_error = f"cannot load model {settings.model!r}: {exc}"
        log.error("%s; /readyz answers 503 until an admin reload succeeds", state.load_error)
    else:
        state.set_model(loaded)
    if drift is not None and settings.drift_interval_s > 0:
        state.drift_task = asyncio.create_task(
            watch(drift, lambda: state.model, settings.drift_window, settings.drift_interval_s)
        )
    if state.feedback is not None and settings.drift_interval_s > 0:
        # on the drift check's period: a time window ages even when no verdict arrives
        state.feedback_task = asyncio.create_task(verdicts.watch(state, settings.drift_interval_s))
    return state


async def _stop(state: ServingState) -> None:
    """Finish queued predictions, then flush the prediction log (nothing acknowledged is lost)."""
    for task in (state.drift_task, state.feedback_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await state.batcher.stop()
    if state.preprocess_pool is not None:
        state.preprocess_pool.shutdown(wait=True)
    if state.predlog is not None:
        await asyncio.to_thread(state.predlog.close)
    if state.drift is not None:
        state.drift.close()
    if state.feedback is not None:
        state.feedback.close()
    log.info("stopped: queues drained")


async def _migrate(url: str) -> None:
    """Bring the prediction store's schema up to date; a database that is down at boot only
    delays it (the log's writer and the feedback routes migrate before their first use)."""
    try:
        await asyncio.to_thread(upgrade_url, url)
    except PokedexError as exc:
        log.warning("prediction store not migrated at start-up, will retry on first use: %s", exc)
