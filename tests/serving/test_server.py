"""`serve()` as a real process: JSON logs with request ids, SIGTERM drains and flushes the log."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tests.serving.conftest import serving_process


def test_serve_logs_json_and_shuts_down_cleanly(
    model_root: Path, tmp_path: Path, png: bytes
) -> None:
    db = tmp_path / "served.db"
    with serving_process(
        subprocess.PIPE, model=str(model_root / "v1"), prediction_log_url=f"sqlite:///{db}",
        threads=1,
    ) as (proc, base):  # fmt: skip
        with httpx.Client(base_url=base) as http:
            for i in range(5):
                headers = {"X-Request-ID": f"served-{i}"}
                response = http.post("/v1/predict", files={"file": png}, headers=headers)
                assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown: dying "by SIGTERM" is the clean end
    assert proc.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # all JSON
    access = [line for line in lines if line["logger"] == "pokedex.access"]
    assert {line.get("request_id") for line in access} >= {f"served-{i}" for i in range(5)}
    assert all(line["route"] in ("/readyz", "/v1/predict") for line in access)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (5,)


def test_serve_runs_numpy_blas_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import pokedex.serving.server as server

    seen: list[int] = []

    def fake_run(app: object, **kwargs: object) -> None:
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    monkeypatch.setattr(server.uvicorn, "run", fake_run)
    with threadpool_limits(limits=None):  # restores the test process's limits on the way out
        server.serve(model="unused-until-startup")
    assert seen
    assert set(seen) == {1}
