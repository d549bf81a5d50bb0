"""Property-based fuzzing of the live API from its own OpenAPI schema (schemathesis, T15).

Every operation gets generated valid and invalid requests against a real server on
127.0.0.1; schemathesis' default checks run on each answer: above all no 5xx, and answers
that match the documented status codes, content types and response schemas. The admin routes
are fuzzed twice: without the token (401 everywhere) and with it (past the auth check).
``POKEDEX_FUZZ_EXAMPLES`` sets the examples per operation (RELIABILITY.md T15: 25 in CI,
200 or more nightly).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings
from tests.figures import record_figure
from tests.serving.conftest import serving_process

# per operation; 25 is enough to hit every documented error path in ~a minute
EXAMPLES = int(os.environ.get("POKEDEX_FUZZ_EXAMPLES", "25"))
ADMIN_TOKEN = "fuzz-admin-token"  # mounts the admin routes
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def live_server(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real `serve()` process (tiny bundle, admin routes on)."""
    db = tmp_path_factory.mktemp("fuzz") / "predictions.db"
    with serving_process(
        model=str(model_root / "v1"), threads=1, prediction_log_url=f"sqlite:///{db}",
        admin_token=ADMIN_TOKEN, model_roots=[str(model_root)], log_level="warning",
    ) as (proc, base):  # fmt: skip
        yield base
        assert proc.poll() is None, "the server died during the fuzzing"
        assert httpx.get(f"{base}/healthz").status_code == 200


@pytest.fixture(scope="module")
def answers() -> Iterator[Counter[tuple[str, int]]]:
    """(operation, status) of every fuzzed call; reported as the T15 figure at the end."""
    seen: Counter[tuple[str, int]] = Counter()
    yield seen
    if seen:
        statuses = Counter()
        for (_, status), n in seen.items():
            statuses[status] += n
        server_errors = sum(n for status, n in statuses.items() if status >= 500)
        record_figure(
            "T15",
            f"{len({op for op, _ in seen})} operations x up to {EXAMPLES} examples (admin with "
            f"and without the token): {sum(seen.values())} calls passed every check, 5xx "
            f"{server_errors}; statuses {dict(sorted(statuses.items()))}",
            __name__,
        )


# The schema the live server publishes, built by the same app factory (schemathesis' lazy
# fixture loader does not work with pytest 9, so the schema is made at import time).
_settings = Settings(model="unused", admin_token=ADMIN_TOKEN, prediction_log_url="")
schema = schemathesis.openapi.from_dict(create_app(_settings).openapi())


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case, live_server: str, answers: Counter[tuple[str, int]]
) -> None:
    # a schema can only say "binary": an upload that is not a decodable image is rightly a 4xx
    response = case.call_and_validate(
        base_url=live_server, timeout=60, excluded_checks=[positive_data_acceptance]
    )
    answers[(case.operation.label, response.status_code)] += 1


@pytest.mark.slow
@schema.include(path_regex="^/v1/admin/").parametrize()
@FUZZ
def test_admin_routes_with_the_token_get_no_server_error(
    case: schemathesis.Case, live_server: str, answers: Counter[tuple[str, int]]
) -> None:
    # nor can it say "a bundle inside the allowlist": a well-formed REF outside it is a 400
    response = case.call_and_validate(
        base_url=live_server, timeout=60, headers=AUTH, excluded_checks=[positive_data_acceptance]
    )
    answers[(f"{case.operation.label} (token)", response.status_code)] += 1
