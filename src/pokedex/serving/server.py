"""`pokedex serve`: run the API under uvicorn with JSON logs and a graceful shutdown."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from threadpoolctl import threadpool_limits

from pokedex.serving.app import create_app
from pokedex.serving.jsonlog import log_config
from pokedex.serving.metrics import MULTIPROC_DIR
from pokedex.serving.settings import Settings

SHUTDOWN_GRACE_S = 25  # in-flight requests get this long after SIGTERM (RELIABILITY.md section 5)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    *,
    variant: str | None = None,
    admin_token: str | None = None,
    log_level: str | None = None,
    **overrides: Any,
) -> None:
    """Serve the HTTP API until SIGINT/SIGTERM; arguments left None come from ``POKEDEX_*``.

    ``overrides`` are any other :class:`Settings` fields (e.g. ``max_batch_size=16``).
    """
    given = {"model": model, "variant": variant, "admin_token": admin_token, "log_level": log_level}
    settings = Settings(**{k: v for k, v in given.items() if v is not None}, **overrides)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(settings.log_level),
        "log_level": settings.log_level.lower(),
        "access_log": False,  # the request middleware logs each request with its id
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_S,
        "server_header": False,
    }
    if settings.workers == 1:
        _limit_blas()
        uvicorn.run(create_app(settings), **options)
        return
    # Several workers: uvicorn spawns each one, which builds its app from the environment, so
    # the settings travel there; the metrics of all of them meet in one folder.
    os.environ.update(worker_env(settings))
    metrics_dir = tempfile.mkdtemp(prefix="pokedex-metrics-")
    os.environ[MULTIPROC_DIR] = metrics_dir
    try:
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=settings.workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> FastAPI:
    """One worker's app, its settings from ``POKEDEX_*`` (see :func:`worker_env`)."""
    _limit_blas()
    return create_app(Settings())


def _limit_blas() -> None:
    # numpy's BLAS runs only small products here (drift statistics, the open-set cosine); its
    # worker threads spin between them and took 1-1.5 ms of CPU per request from the cores the
    # model needs (docs/serving.md). The model's own runtime keeps its threads.
    threadpool_limits(limits=1, user_api="blas")


def worker_env(settings: Settings) -> dict[str, str]:
    """``settings`` as ``POKEDEX_*`` variables for the worker processes; with the runtime's
    threads left automatic (0), each worker gets its share of the cores, so workers do not fight."""
    if settings.threads == 0:
        settings = settings.model_copy(
            update={"threads": max(1, (os.cpu_count() or 1) // settings.workers)}
        )
    env = {}
    for name, value in settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"POKEDEX_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env
