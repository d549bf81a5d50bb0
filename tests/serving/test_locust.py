"""The repository's locustfile, headless, against a real `serve()` process on 127.0.0.1."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.test_server import _free_port

LOCUSTFILE = Path(__file__).parents[2] / "locustfile.py"


@pytest.fixture
def server(model_root: Path, tmp_path: Path) -> Iterator[str]:
    """Base URL of a served tiny bundle; stopped after the test."""
    port, db = _free_port(), tmp_path / "served.db"
    code = (
        "from pokedex.serving.server import serve; "
        f"serve(port={port}, model={str(model_root / 'v1')!r}, "
        f"prediction_log_url={f'sqlite:///{db}'!r}, threads=1, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # generous: a loaded CI box imports slowly
        while True:
            assert proc.poll() is None, "the server exited at start-up"
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_locust_users_run_headless_without_failures(
    server: str, tmp_path: Path, images: dict[str, bytes]
) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for fmt, data in images.items():
        (folder / f"sprite.{fmt}").write_bytes(data)
    prefix = tmp_path / "locust"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--users", "8", "--spawn-rate", "8", "--run-time", "10s", "--host", server]
    command += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    env = {**os.environ, "POKEDEX_LOCUST_IMAGES": str(folder)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]  # locust exits 1 on any failure
    with open(f"{prefix}_stats.csv", newline="") as fh:
        stats = {row["Name"]: row for row in csv.DictReader(fh)}
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert int(stats["/v1/predict"]["Request Count"]) > 0
    assert int(stats["/v1/species/[name]"]["Request Count"]) > 0  # names from the answers
