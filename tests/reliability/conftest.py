"""Reliability suite: real `pokedex serve` processes on 127.0.0.1, stopped at the end.

Each test reports the figure it measured through the ``figure`` fixture (tests/figures.py).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from pokedex.benchmarks import localserver
from pokedex.benchmarks.localserver import free_port, stop
from tests.serving.conftest import write_model_root

POKEDEX = str(Path(sys.executable).with_name("pokedex"))
MB = 1024 * 1024
ADMIN_TOKEN = "reliability-admin-token"
UI_ORIGIN = "http://localhost:8501"
# generous: the first import of onnxruntime and FastAPI is slow on a busy CI box
READY_TIMEOUT_S = float(os.environ.get("POKEDEX_SERVER_START_S", "240"))


def env_number(name: str, default: float) -> float:
    """A duration or count from the environment, so `.ci/run` can lengthen the long tests."""
    return float(os.environ.get(name, default))


@dataclass
class Server:
    """One `pokedex serve` process, its folder (its cwd) and its SQLite prediction log."""

    proc: subprocess.Popen[bytes]
    url: str
    folder: Path
    db: Path
    log: Path
    ready_s: float = 0.0  # spawn to the first 200 on /readyz

    def rss_mb(self) -> float:
        """Resident memory of the server process."""
        return psutil.Process(self.proc.pid).memory_info().rss / MB

    def open_files(self) -> int:
        """File descriptors the server process holds (sockets included)."""
        return psutil.Process(self.proc.pid).num_fds()

    def healthy(self, timeout: float = 10.0) -> bool:
        """True when /healthz answers 200."""
        try:
            return httpx.get(f"{self.url}/healthz", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def rows(self, where: str = "1", *args: Any) -> int:
        """Prediction-log rows matching an SQL condition (0 before the table exists)."""
        with sqlite3.connect(self.db, timeout=30) as conn:
            query = f"SELECT count(*) FROM predictions WHERE {where}"
            try:
                return int(conn.execute(query, args).fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    def rows_soon(self, expected: int, where: str, *args: Any, timeout: float = 30) -> int:
        """Rows matching ``where`` once there are ``expected`` (or what is there at timeout)."""
        deadline = time.monotonic() + timeout
        while (n := self.rows(where, *args)) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return n

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal the server and wait for it; SIGKILL if it outlives ``timeout``."""
        stop(self.proc, timeout, sig)
        return self.proc.returncode


def server_env(db: Path, settings: dict[str, Any]) -> dict[str, str]:
    """The process env: nothing of the developer's POKEDEX_*, then ``settings`` as POKEDEX_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POKEDEX_")}
    env["POKEDEX_PREDICTION_LOG_URL"] = f"sqlite:///{db}"
    for key, value in settings.items():
        env[f"POKEDEX_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def wait_ready(server: Server, timeout: float = READY_TIMEOUT_S) -> float:
    """Seconds until /readyz answers 200; fails if the process dies or never gets there."""
    start = time.monotonic()
    localserver.wait_ready(server.proc, f"{server.url}/readyz", server.log, timeout)
    return time.monotonic() - start


def start_server(folder: Path, model: Path, db: Path | None = None, **settings: Any) -> Server:
    """Start `pokedex serve` in ``folder`` with ``settings`` (Settings fields) and wait for it."""
    folder.mkdir(parents=True, exist_ok=True)
    db = db or folder / "predictions.db"
    port = free_port()
    log = folder / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [POKEDEX, "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=server_env(db, settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", folder, db, log)
    try:
        server.ready_s = wait_ready(server)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    return server


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An allowlisted models folder holding the tiny ONNX bundles v1 and v2."""
    return write_model_root(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    """The shared server: default limits, admin route on, CORS for the UI's origin only."""
    server = start_server(
        tmp_path_factory.mktemp("api"),
        model_dir / "v1",
        threads=1,
        admin_token=ADMIN_TOKEN,
        model_roots=[str(model_dir)],
        cors_origins=[UI_ORIGIN],
    )
    yield server
    server.stop()


def percentile_ms(samples_s: list[float], q: float) -> float:
    """The ``q``-th percentile of durations given in seconds, in milliseconds."""
    return 1000 * float(np.percentile(samples_s, q)) if samples_s else float("nan")


@contextmanager
def probing(url: str, every_s: float = 0.02) -> Iterator[list[float]]:
    """Time GET /healthz in a thread while the block runs; yields the latencies (seconds).

    A probe that fails counts as 60 s, so an event loop that stops answering cannot hide.
    """
    samples: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                samples.append(time.perf_counter() - start if ok else 60.0)
                stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    while not samples and thread.is_alive():  # the prober is up before the block starts
        time.sleep(0.005)
    try:
        yield samples
    finally:
        stop.set()
        thread.join(70)
