"""Serving stays torch-free; settings and logs behave as documented."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pokedex.serving.jsonlog import JsonFormatter, request_id
from pokedex.serving.settings import Settings

_CHECK = """
import sys
from fastapi.testclient import TestClient
from pokedex.serving.app import create_app
from pokedex.serving.server import serve
from pokedex.serving.settings import Settings
settings = Settings(model=sys.argv[1], prediction_log_url="")
with TestClient(create_app(settings)) as client:
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
heavy = [m for m in ("torch", "lightning", "hydra", "torchvision") if m in sys.modules]
assert not heavy, heavy
"""


def test_serving_never_imports_torch(model_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, str(model_root / "v1")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_settings_read_the_env_and_forbid_typos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POKEDEX_MODEL", "elsewhere")
    monkeypatch.setenv("POKEDEX_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("POKEDEX_API_URL", "http://ui-only")  # another component's variable
    settings = Settings()
    assert (settings.model, settings.max_batch_size) == ("elsewhere", 8)
    with pytest.raises(ValidationError):
        Settings(max_batch_sise=8)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(variant="fp16")  # type: ignore[arg-type]


def test_defaults_follow_the_reliability_limits() -> None:
    settings = Settings()
    assert settings.max_batch_size == 32
    assert settings.max_wait_ms == 5
    assert settings.max_queue == 256
    assert settings.request_timeout_s == 30
    assert settings.max_batch_files == 64
    assert settings.max_pixels == 25_000_000
    assert settings.admin_token is None
    assert settings.cors_origins == []


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("pokedex.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.route = "/v1/predict"
    token = request_id.set("rid-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello you"
    assert line["request_id"] == "rid-1"
    assert line["route"] == "/v1/predict"
    assert line["level"] == "info"
