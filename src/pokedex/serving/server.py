"""`pokedex serve`: run the API under uvicorn with JSON logs and a graceful shutdown."""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.connection import wait
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from threadpoolctl import threadpool_limits

from pokedex.errors import PokedexError
from pokedex.serving.app import create_app
from pokedex.serving.jsonlog import log_config
from pokedex.serving.peers import Peers
from pokedex.serving.prometheus import MULTIPROC_DIR
from pokedex.serving.settings import Settings

log = logging.getLogger(__name__)

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
        _tune_process(settings)
        uvicorn.run(create_app(settings), **options)
        return
    # Several workers: each builds its app from the environment, so the settings travel there;
    # the metrics of all of them meet in one folder.
    os.environ.update(worker_env(settings))
    metrics_dir = tempfile.mkdtemp(prefix="pokedex-metrics-")
    os.environ[MULTIPROC_DIR] = metrics_dir
    try:
        _supervise(settings.workers, options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` processes, each listening on the port through its own SO_REUSEPORT
    socket, so the kernel spreads new connections over them evenly (32 keep-alive clients, three
    runs: 14/18, 12/20, 13/19; with uvicorn's workers, which share one socket and accept as
    many waiting connections as they can when they wake: 8/24, 26/6, 25/7). SIGTERM/SIGINT are
    passed on to every worker, each drains as one process would; a worker that dies takes the
    others down, for the orchestrator to restart the whole server."""
    _reuse_port_socket(options["host"], options["port"]).close()  # a taken port fails here
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Value("i", 0)  # workers whose model has loaded: see Peers
    connections = spawn.Array("i", workers)  # each worker's open connections: see Peers
    procs = [
        spawn.Process(
            target=_worker,
            args=(options, ready, connections, i, workers),
            name=f"pokedex-worker-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping and all(proc.is_alive() for proc in procs):
            wait([proc.sentinel for proc in procs], timeout=1.0)
        died = [proc for proc in procs if not proc.is_alive()] if not stopping else []
        if died:
            log.error("worker %s exited (code %s): stopping the others", died[0].name,
                      died[0].exitcode)  # fmt: skip
            forward(signal.SIGTERM, None)
        for proc in procs:
            proc.join(SHUTDOWN_GRACE_S + 5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died:
        raise SystemExit(1)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT (Linux balances across them)."""
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None:
        raise PokedexError("--workers above 1 needs SO_REUSEPORT (Linux): run one worker")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PokedexError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


_peers: Peers | None = None  # set in each worker process before its app is built


def _worker(
    options: dict[str, Any], ready: Any, connections: Any, index: int, workers: int
) -> None:
    """One worker process: its own listening socket, its own app (:func:`worker_app`)."""
    global _peers
    _peers = Peers(ready, workers, connections, index)
    sock = _reuse_port_socket(options["host"], options["port"])
    config = uvicorn.Config(f"{__name__}:worker_app", factory=True, **options)
    server = _WorkerServer(config)
    _peers.open_connections = lambda: len(server.server_state.connections)
    server.run(sockets=[sock])


class _WorkerServer(uvicorn.Server):
    """A worker stops gracefully on any signal: Ctrl-C in a terminal reaches it twice (from
    the terminal and from the supervisor), which plain uvicorn takes as "force quit"."""

    def handle_exit(self, sig: int, frame: object) -> None:
        """Begin the graceful shutdown; the supervisor kills what outlives the grace period."""
        self.should_exit = True


def worker_app() -> FastAPI:
    """One worker's app, its settings from ``POKEDEX_*`` (see :func:`worker_env`)."""
    settings = Settings()
    _tune_process(settings)
    return create_app(settings, peers=_peers)


def _tune_process(settings: Settings) -> None:
    # numpy's BLAS runs only small products here (drift statistics, the open-set cosine); its
    # worker threads spin between them and took 1-1.5 ms of CPU per request from the cores the
    # model needs (docs/serving.md). The model's own runtime keeps its threads.
    threadpool_limits(limits=1, user_api="blas")
    tune_malloc(settings.malloc_arenas, settings.malloc_mmap_threshold_kb * 1024)
    trim_malloc_every(settings.malloc_trim_s)


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameter numbers in glibc's <malloc.h>


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl's mallopt does nothing)
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(arenas: int, mmap_threshold: int) -> dict[str, bool]:
    """Keep a long-running server's resident memory from creeping (glibc only).

    glibc's malloc gives threads heaps of their own, up to eight per core, and memory freed in
    one is reused only there; and once a large block (an upload's body, a decoded photo) is
    freed, it raises its threshold for serving large blocks from mmap, so the next ones come from
    the heap, which they fragment. ``arenas`` caps the heaps, ``mmap_threshold`` (bytes) pins the
    threshold, which also keeps the heap's free top returned to the system; 0 leaves either at
    glibc's default. ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` in the environment, read
    by glibc itself, win. Returns which were set (none where the C library is not glibc).
    Measured in docs/reliability.md (T23).
    """
    wanted = {"arenas": (M_ARENA_MAX, arenas, "MALLOC_ARENA_MAX")}
    wanted["mmap_threshold"] = (M_MMAP_THRESHOLD, mmap_threshold, "MALLOC_MMAP_THRESHOLD_")
    done = dict.fromkeys(wanted, False)
    if (libc := _glibc()) is None:
        return done
    for name, (param, value, env) in wanted.items():
        if value and env not in os.environ:
            done[name] = bool(libc.mallopt(param, value))
    return done


def trim_malloc_every(seconds: float) -> threading.Thread | None:
    """Every ``seconds``, hand the free pages inside malloc's heaps back to the system (glibc).

    A burst (a backlog of uploads, a long queue) leaves the heaps fragmented: their free
    memory lies between blocks still in use, where free() cannot return it, so the resident
    memory keeps the burst's high-water mark. glibc's ``malloc_trim(0)`` releases every whole
    free page; it takes under a few milliseconds and holds one heap's lock at a time. Runs in a
    daemon thread (ctypes lets go of the GIL meanwhile); returns it, or None when ``seconds`` is
    0 or the C library is not glibc. Measured in docs/reliability.md (T23).
    """
    if not seconds or (libc := _glibc()) is None:
        return None

    def trim() -> None:
        while True:
            time.sleep(seconds)
            libc.malloc_trim(0)

    thread = threading.Thread(target=trim, name="malloc-trim", daemon=True)
    thread.start()
    return thread


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
