"""Property-based fuzzing of the live API from its own OpenAPI schema (schemathesis, T15).

Every operation gets generated valid and invalid requests against a real server on
127.0.0.1; schemathesis' default checks run on each answer: above all no 5xx, and answers
that match the documented status codes, content types and response schemas.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings
from tests.serving.test_server import _free_port

EXAMPLES = 25  # per operation; enough to hit every documented error path in ~a minute
ADMIN_TOKEN = "fuzz-admin-token"  # mounts the admin routes; the fuzzer never sends it


@pytest.fixture(scope="module")
def live_server(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real `serve()` process (tiny bundle, admin routes on)."""
    port, db = _free_port(), tmp_path_factory.mktemp("fuzz") / "predictions.db"
    code = (
        "from pokedex.serving.server import serve; "
        f"serve(port={port}, model={str(model_root / 'v1')!r}, threads=1, "
        f"prediction_log_url={f'sqlite:///{db}'!r}, admin_token={ADMIN_TOKEN!r}, "
        f"model_roots=[{str(model_root)!r}], log_level='warning')"
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
        assert proc.poll() is None, "the server died during the fuzzing"
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# The schema the live server publishes, built by the same app factory (schemathesis' lazy
# fixture loader does not work with pytest 9, so the schema is made at import time).
_settings = Settings(model="unused", admin_token=ADMIN_TOKEN, prediction_log_url="")
schema = schemathesis.openapi.from_dict(create_app(_settings).openapi())


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case, live_server: str
) -> None:
    # a schema can only say "binary": an upload that is not a decodable image is rightly a 4xx
    case.call_and_validate(
        base_url=live_server, timeout=60, excluded_checks=[positive_data_acceptance]
    )
