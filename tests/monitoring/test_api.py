"""GET /v1/monitoring/drift and the drift gauges of /metrics, on the real app.

Predictions go through POST /v1/predict/batch, land in the prediction log (written in the
background), and the drift check reads them back: the whole loop the monitor relies on.
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pokedex.benchmarks.localserver import free_port
from pokedex.monitoring.profile import REFERENCE_FILE
from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings
from tests.conftest import encode
from tests.monitoring.conftest import (
    REFERENCE_IMAGES,
    WINDOW,
    Shift,
    blurred,
    dark,
    images,
    unchanged,
)
from tests.serving.conftest import write_bundle

Client = httpx.Client | TestClient


def _settings(bundle: Path, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model": str(bundle),
        "prediction_log_url": f"sqlite:///{db}",
        "max_wait_ms": 1.0,
        "preprocess_threads": 1,
        "threads": 1,
        "drift_cache_s": 0,
        "drift_interval_s": 0,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def client(profiled_bundle: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The app over the profiled bundle with a fresh prediction log."""
    with TestClient(create_app(_settings(profiled_bundle, tmp_path / "p.db"))) as c:
        yield c


def _send(client: Client, seeds: range, shift: Shift) -> None:
    files = [
        ("files", (f"{s}.png", encode(im, "PNG")))
        for s, im in zip(seeds, images(seeds, shift), strict=True)
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200, response.text
    assert all(item["prediction"] for item in response.json()["items"])


def _drift(client: Client, logged: int, window: str = str(WINDOW)) -> dict[str, Any]:
    """The drift report once ``logged`` predictions are in the log (it is written behind)."""
    deadline = time.monotonic() + 30
    while True:
        response = client.get("/v1/monitoring/drift", params={"window": window})
        assert response.status_code == 200, response.text
        report = response.json()
        if report["predictions"] >= logged or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def _gauges(client: Client) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").text
    return {
        (s.name, s.labels.get("feature", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("pokedex_drift", "pokedex_model_ready"))
    }


def test_in_distribution_traffic_is_no_drift(client: TestClient) -> None:
    _send(client, range(1000, 1000 + WINDOW), unchanged)
    report = _drift(client, WINDOW)
    assert (report["verdict"], report["predictions"]) == ("no_drift", WINDOW)
    assert report["drifted"] == []
    assert report["model"] == "pokedex-test@v1"
    gauges = _gauges(client)
    assert gauges[("pokedex_drift_detected", "")] == 0
    assert gauges[("pokedex_drift_window_predictions", "")] == WINDOW
    assert gauges[("pokedex_model_ready", "")] == 1
    assert 0 < gauges[("pokedex_drift_reference_confidence_ratio", "")] <= 1


def test_dark_traffic_drifts_on_brightness_and_the_gauges_say_so(client: TestClient) -> None:
    _send(client, range(1000, 1000 + WINDOW), dark)
    report = _drift(client, WINDOW)
    assert report["verdict"] == "drift"
    assert {"brightness", "contrast"} <= set(report["drifted"])
    assert "alpha_coverage" not in report["drifted"]
    gauges = _gauges(client)
    assert gauges[("pokedex_drift_detected", "")] == 1
    assert gauges[("pokedex_drift_feature_detected", "brightness")] == 1
    assert gauges[("pokedex_drift_feature_detected", "alpha_coverage")] == 0
    assert gauges[("pokedex_drift_feature_psi", "brightness")] >= 0.2


def test_the_window_is_the_most_recent_predictions(client: TestClient) -> None:
    _send(client, range(1000, 1000 + WINDOW), blurred)
    _send(client, range(2000, 2000 + WINDOW), unchanged)
    assert _drift(client, 2 * WINDOW, "1h")["predictions"] == 2 * WINDOW
    recent = _drift(client, WINDOW)  # only the in-distribution half
    assert recent["verdict"] == "no_drift"
    both = _drift(client, 2 * WINDOW, str(2 * WINDOW))
    assert "sharpness" in both["drifted"]


def test_a_few_predictions_give_no_verdict(client: TestClient) -> None:
    _send(client, range(5), unchanged)
    report = _drift(client, 5)
    assert (report["verdict"], report["predictions"], report["features"]) == (
        "insufficient_data", 5, [],
    )  # fmt: skip


@pytest.mark.parametrize("window", ["abc", "0", "5y", "-3", "1000000", "1" * 17])
def test_a_bad_window_is_422(client: TestClient, window: str) -> None:
    response = client.get("/v1/monitoring/drift", params={"window": window})
    assert response.status_code == 422
    assert "window" in response.json()["detail"]


def test_a_bundle_without_a_reference_is_404(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "plain")
    with TestClient(create_app(_settings(bundle, tmp_path / "p.db"))) as c:
        response = c.get("/v1/monitoring/drift")
    assert response.status_code == 404
    assert "pokedex drift profile" in response.json()["detail"]


def test_without_a_prediction_log_drift_is_404(profiled_bundle: Path, tmp_path: Path) -> None:
    settings = _settings(profiled_bundle, tmp_path / "p.db", prediction_log_url="")
    with TestClient(create_app(settings)) as c:
        response = c.get("/v1/monitoring/drift")
    assert response.status_code == 404
    assert "prediction log is off" in response.json()["detail"]


def test_the_periodic_check_keeps_the_gauges_current(profiled_bundle: Path, tmp_path: Path) -> None:
    settings = _settings(profiled_bundle, tmp_path / "p.db", drift_interval_s=0.2)
    with TestClient(create_app(settings)) as c:
        _send(c, range(1000, 1000 + WINDOW), dark)
        deadline = time.monotonic() + 30
        while _gauges(c).get(("pokedex_drift_detected", "")) != 1:
            assert time.monotonic() < deadline, "the gauge never turned to 1"
            time.sleep(0.1)


def test_a_real_server_reports_drift(profiled_bundle: Path, tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "served.db"
    code = (
        "from pokedex.serving.server import serve; "
        f"serve(port={port}, model={str(profiled_bundle)!r}, "
        f"prediction_log_url={f'sqlite:///{db}'!r}, threads=1, drift_cache_s=0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 240  # generous: a loaded CI box imports slowly
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server never became ready"
                time.sleep(0.1)
            _send(http, range(1000, 1000 + WINDOW), dark)
            report = _drift(http, WINDOW)
            gauges = _gauges(http)
        assert report["verdict"] == "drift"
        assert "brightness" in report["drifted"]
        assert gauges[("pokedex_drift_detected", "")] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_a_reference_built_while_serving_is_picked_up(
    profiled_bundle: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "late")
    with TestClient(create_app(_settings(bundle, tmp_path / "p.db"))) as c:
        assert c.get("/v1/monitoring/drift").status_code == 404
        shutil.copy(profiled_bundle / REFERENCE_FILE, bundle / REFERENCE_FILE)  # same model
        response = c.get("/v1/monitoring/drift")
    assert response.status_code == 200, response.text
    assert response.json()["reference_images"] == REFERENCE_IMAGES


def test_an_unreadable_log_is_503(profiled_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-database"
    folder.mkdir()  # SQLite cannot open a folder
    settings = _settings(profiled_bundle, tmp_path, prediction_log_url=f"sqlite:///{folder}")
    with TestClient(create_app(settings)) as c:
        response = c.get("/v1/monitoring/drift")
    assert response.status_code == 503
    assert "cannot read the prediction log" in response.json()["detail"]


def test_drift_series_are_there_from_the_start_and_a_check_adds_none(
    client: TestClient,
) -> None:
    before = _gauges(client)
    assert before[("pokedex_drift_detected", "")] == 0
    assert math.isnan(before[("pokedex_drift_feature_psi", "brightness")])
    assert ("pokedex_drift_feature_psi", "embedding") not in before  # a joint test: no PSI
    _send(client, range(1000, 1000 + WINDOW), dark)
    _drift(client, WINDOW)
    after = _gauges(client)
    assert set(after) == set(before)
    assert after[("pokedex_drift_feature_psi", "brightness")] >= 0.2
