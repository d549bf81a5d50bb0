"""Each image's commands run here as the container would run them (no Docker engine needed).

The working folder is laid out like the image's WORKDIR; the env is the image's ENV; the
commands are the Dockerfile's own RUN, ENTRYPOINT + CMD and HEALTHCHECK, rebound to
127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from pokedex.benchmarks.localserver import free_port
from tests.conftest import encode, sprite, write_raw
from tests.delivery.conftest import (
    Dockerfile,
    needs_posix,
    rebind,
    running,
    wait_healthy,
)

pytestmark = needs_posix
STARTUP_S = 240  # generous: this machine's cores are shared with a training run


def _export_line(api: Dockerfile) -> str:
    (line,) = [r for r in api.all("RUN", "export") if "pokedex export" in r]
    return line


def _serve_api(app: Path, api: Dockerfile) -> None:
    """Start the API the way the image does and check it answers a prediction."""
    (app / "var").mkdir()  # the image's writable folder
    port = free_port()
    env = api.local_env(app)
    argv = rebind(api.exec_form("ENTRYPOINT") + api.exec_form("CMD"), port)
    with running(argv, env, app) as server:
        wait_healthy(rebind(api.healthcheck(), port), env, app, server, STARTUP_S)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/predict",
            files={"file": ("abra.png", encode(sprite(7), "PNG"), "image/png")},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["species"][0]["name"]
    # POKEDEX_PREDICTION_LOG_URL of the image: a SQLite file in var/, written on shutdown at last
    with sqlite3.connect(app / "var" / "predictions.db") as db:
        assert db.execute("select count(*) from predictions").fetchone()[0] == 1


def test_api_image_serves_a_bundle_that_has_onnx(tmp_path: Path) -> None:
    from tests.serving.conftest import write_bundle

    api = Dockerfile.load("api")
    app = tmp_path / "app"
    write_bundle(app / "models" / "release")
    before = {p.name: p.stat().st_mtime_ns for p in (app / "models" / "release").iterdir()}
    # the build stage's export step leaves a bundle with ONNX alone
    subprocess.run(["sh", "-c", _export_line(api)], cwd=app, check=True, timeout=60)
    assert {p.name: p.stat().st_mtime_ns for p in (app / "models" / "release").iterdir()} == before
    _serve_api(app, api)


@pytest.mark.slow
def test_api_image_exports_a_bundle_without_onnx_then_serves_it(tmp_path: Path) -> None:
    from tests.jobs.test_export import make_tiny_bundle

    api = Dockerfile.load("api")
    app = tmp_path / "app"
    (app / "models").mkdir(parents=True)
    make_tiny_bundle(app / "models" / "release")
    env = api.local_env(app)
    result = subprocess.run(
        ["sh", "-c", _export_line(api)],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((app / "models" / "release" / "bundle.json").read_text())
    assert meta["export"]["data"] == "synthetic"
    assert (app / "models" / "release" / "model.onnx").is_file()
    _serve_api(app, api)


@pytest.mark.slow
def test_ui_image_starts_and_passes_its_healthcheck(tmp_path: Path) -> None:
    ui = Dockerfile.load("ui")
    port = free_port()
    env = ui.local_env(tmp_path)
    assert env["POKEDEX_API_URL"] == "http://api:8000"  # the compose service, kept as in the image
    argv = rebind(ui.exec_form("ENTRYPOINT") + ui.exec_form("CMD"), port)
    with running(argv, env, tmp_path) as server:
        wait_healthy(rebind(ui.healthcheck(), port), env, tmp_path, server, STARTUP_S)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert page.status_code == 200
        assert "<html" in page.text.lower()


@pytest.mark.slow
def test_mlflow_image_serves_tracking_with_its_settings(tmp_path: Path) -> None:
    mlflow = Dockerfile.load("mlflow")
    port = free_port()
    (tmp_path / "mlartifacts").mkdir()
    env = mlflow.local_env(tmp_path, MLFLOW_HOST="127.0.0.1", MLFLOW_PORT=str(port))
    with running(mlflow.exec_form("CMD"), env, tmp_path) as server:
        wait_healthy(mlflow.healthcheck(), env, tmp_path, server, STARTUP_S)
        # the allowed-hosts list admits loopback on any port; another Host is refused
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search"
        assert httpx.post(url, json={"max_results": 5}, timeout=30).status_code == 200
        evil = httpx.post(url, json={}, headers={"Host": "evil.example"}, timeout=30)
        assert evil.status_code in (400, 403)
    assert (tmp_path / "mlflow.db").is_file()  # MLFLOW_BACKEND_STORE_URI, relative to WORKDIR


@pytest.fixture
def train_app(tmp_path: Path) -> Path:
    """The train image's WORKDIR with a synthetic dataset at its POKEDEX_PROCESSED."""
    from pokedex.data.prepare import prepare

    app = tmp_path / "app"
    write_raw(tmp_path / "raw", species=6, per_species=6)
    prepare(tmp_path / "raw", app / "data" / "processed", workers=1)
    return app


@pytest.mark.slow
def test_train_image_default_command_trains_the_smoke_preset(train_app: Path) -> None:
    train = Dockerfile.load("train")
    env = train.local_env(train_app)
    argv = train.exec_form("ENTRYPOINT") + train.exec_form("CMD")
    assert argv == ["pokedex", "train", "experiment=smoke"]
    result = subprocess.run(
        argv, cwd=train_app, env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    # POKEDEX_RUNS=runs: the run lands under the WORKDIR
    assert Path(summary["run_dir"]).parts[0] == "runs"
    assert (train_app / summary["run_dir"] / "config.yaml").is_file()
    assert (train_app / summary["bundle"] / "bundle.json").is_file()
