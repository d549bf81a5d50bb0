"""`serve()` as a real process: JSON logs with request ids, SIGTERM drains and flushes the log."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_logs_json_and_shuts_down_cleanly(
    model_root: Path, tmp_path: Path, png: bytes
) -> None:
    port, db = _free_port(), tmp_path / "served.db"
    code = (
        "from pokedex.serving.server import serve; "
        f"serve(port={port}, model={str(model_root / 'v1')!r}, "
        f"prediction_log_url={f'sqlite:///{db}'!r}, threads=1)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # generous: a loaded CI box imports slowly
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        with httpx.Client(base_url=base) as http:
            for i in range(5):
                headers = {"X-Request-ID": f"served-{i}"}
                response = http.post("/v1/predict", files={"file": png}, headers=headers)
                assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn re-raises the signal after its graceful shutdown: dying "by SIGTERM" is the clean end
    assert proc.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # all JSON
    access = [line for line in lines if line["logger"] == "pokedex.access"]
    assert {line.get("request_id") for line in access} >= {f"served-{i}" for i in range(5)}
    assert all(line["route"] in ("/readyz", "/v1/predict") for line in access)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (5,)
