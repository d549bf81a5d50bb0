"""`serve()` with several worker processes: one log, metrics summed over workers, a clean stop."""

from __future__ import annotations

import multiprocessing
import re
import signal
import sqlite3
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from pokedex.serving.app import create_app
from pokedex.serving.peers import SHED_INTERVAL_S, Peers
from pokedex.serving.settings import Settings
from tests.serving.conftest import MakeSettings, serving_process

PREDICTIONS = 40
_SERVED = re.compile(
    r'^pokedex_http_requests_total\{method="POST",route="/v1/predict",status="200"\} (\S+)$', re.M
)


def _metrics_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("pokedex-metrics-*"))


def test_two_workers_share_one_log_sum_their_metrics_and_stop_together(
    model_root: Path, tmp_path: Path, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server's temporary folders in this test's own: other test runs on the machine
    # create and remove theirs in the shared one meanwhile
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    db = tmp_path / "served.db"
    dirs_before = _metrics_dirs()
    with serving_process(
        subprocess.PIPE, model=str(model_root / "v1"), prediction_log_url=f"sqlite:///{db}",
        workers=2, admin_token="workers-token", model_roots=[str(model_root)],
    ) as (proc, base):  # fmt: skip
        workers = psutil.Process(proc.pid).children()
        spawned = [p for p in workers if "spawn_main" in " ".join(p.cmdline())]
        assert len(spawned) == 2
        assert len(_metrics_dirs() - dirs_before) == 1  # the shared metrics folder, in temp

        def predict(_: int) -> int:  # a new connection each time: the kernel spreads them
            return httpx.post(f"{base}/v1/predict", files={"file": png}, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(predict, range(PREDICTIONS))) == [200] * PREDICTIONS
        # whichever worker answers the scrape, it reports the requests of both
        for _ in range(6):
            text = httpx.get(f"{base}/metrics").text
            assert [float(v) for v in _SERVED.findall(text)] == [PREDICTIONS]
            assert "pokedex_model_ready 1.0" in text
            assert 'pokedex_model_info{name="pokedex-test"' in text
        reload = httpx.post(
            f"{base}/v1/admin/reload",
            json={"model": str(model_root / "v2")},
            headers={"Authorization": "Bearer workers-token"},
        )
        assert reload.status_code == 409
        assert "2 workers" in reload.json()["detail"]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert stderr.count("Application shutdown complete") == 2
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in spawned)
    assert _metrics_dirs() == dirs_before  # the shared metrics folder is removed
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (PREDICTIONS,)


def test_the_settings_reach_the_workers_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pokedex.serving.server as server

    monkeypatch.setattr(server.os, "cpu_count", lambda: 8)
    given = Settings(
        model="models/candidate", workers=4, admin_token="s3cret", max_wait_ms=2.5,
        cors_origins=["http://localhost:8501"], log_images=True,
    )  # fmt: skip
    for key, value in server.worker_env(given).items():
        monkeypatch.setenv(key, value)  # removed again after the test
    seen = Settings()  # what a worker builds
    assert seen.model_dump(exclude={"threads", "admin_token"}) == given.model_dump(
        exclude={"threads", "admin_token"}
    )
    assert seen.admin_token is not None
    assert seen.admin_token.get_secret_value() == "s3cret"
    assert seen.threads == 2  # the model runtime's share of 8 cores over 4 workers


def test_a_worker_that_dies_takes_the_server_down(model_root: Path, tmp_path: Path) -> None:
    """Never half a server: the orchestrator sees the exit and restarts the whole of it."""
    with serving_process(
        subprocess.PIPE, model=str(model_root / "v1"),
        prediction_log_url=f"sqlite:///{tmp_path / 'served.db'}", workers=2,
    ) as (proc, _):  # fmt: skip
        spawned = [
            p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())
        ]
        spawned[0].kill()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "exited (code -9): stopping the others" in stderr
    assert not spawned[1].is_running() or spawned[1].status() == psutil.STATUS_ZOMBIE


def test_a_worker_is_ready_only_once_every_worker_has_loaded_its_model(
    make_settings: MakeSettings,
) -> None:
    # keep-alive clients that connect while one worker is up stay on it: readiness waits for all
    peers = Peers(multiprocessing.get_context("spawn").Value("i", 0), workers=2)
    with TestClient(create_app(make_settings(), peers=peers)) as client:
        waiting = client.get("/readyz")
        assert waiting.status_code == 503
        assert "other workers" in waiting.json()["detail"]
        assert waiting.headers["Retry-After"] == "1"
        peers.loaded()  # the other worker's model is in
        assert client.get("/readyz").status_code == 200


def test_a_worker_holding_more_than_its_share_of_connections_lets_one_go(
    make_settings: MakeSettings, png: bytes
) -> None:
    spawn = multiprocessing.get_context("spawn")
    shared = spawn.Array("i", [0, 14])  # the other worker holds 14 connections
    peers = Peers(spawn.Value("i", 1), workers=2, connections=shared, index=0)
    held = [19]
    peers.open_connections = lambda: held[0]
    with TestClient(create_app(make_settings(), peers=peers)) as client:
        busy = client.post("/v1/predict", files={"file": ("a.png", png)})
        assert busy.status_code == 200
        assert busy.headers["connection"] == "close"  # 19 > ceil(33 / 2): the client reconnects
        assert list(shared) == [19, 14]  # published for the other worker to see
        held[0] = 17  # 17 > ceil(31 / 2), but the last close may not be counted yet
        assert "connection" not in client.get("/healthz").headers
        time.sleep(SHED_INTERVAL_S)
        assert client.get("/healthz").headers["connection"] == "close"
        time.sleep(SHED_INTERVAL_S)
        held[0] = 15
        assert "connection" not in client.get("/healthz").headers  # at its share: kept
