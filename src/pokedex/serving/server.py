"""`pokedex serve`: run the API under uvicorn with JSON logs and a graceful shutdown."""

from __future__ import annotations

from typing import Any

import uvicorn
from threadpoolctl import threadpool_limits

from pokedex.serving.app import create_app
from pokedex.serving.jsonlog import log_config
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
    # numpy's BLAS runs only small products here (drift statistics, the open-set cosine); its
    # worker threads spin between them and took 1-1.5 ms of CPU per request from the cores the
    # model needs (docs/serving.md). The model's own runtime keeps its threads.
    threadpool_limits(limits=1, user_api="blas")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level.lower(),
        access_log=False,  # the request middleware logs each request with its id
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        server_header=False,
    )
