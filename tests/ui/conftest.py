"""A fake Pokédex API on 127.0.0.1 (canned answers built from the real response schemas),
and Streamlit AppTest fixtures that point the UI at it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from prometheus_client import generate_latest
from streamlit.testing.v1 import AppTest

import pokedex.ui
from pokedex.core.schemas import (
    ConfusedPair,
    FeedbackAccuracy,
    ModelInfo,
    ModelRef,
    OpenSetInfo,
    PredictResponse,
    SpeciesInfo,
    SpeciesList,
    SpeciesScore,
    SpeciesSummary,
    TypeMatchups,
    Weakness,
)
from pokedex.dex.catalog import STATS
from pokedex.serving.prometheus import Metrics
from pokedex.ui.api import PokedexApi
from tests.ui.bundle import BY_NAME, SPECIES, embedding_map, sprite_means, typechart

APP = Path(pokedex.ui.__file__).parent / "app.py"
MODEL = ModelRef(name="pokedex-colours", version="t1", variant="fp32")
CHART = typechart()
PREDICT_LATENCIES_S = (0.004, 0.02, 0.02, 0.03, 0.2)  # what the fake /metrics has observed


def weaknesses(types: tuple[str, ...]) -> list[Weakness]:
    """What the API would say hits this typing hardest."""
    return [Weakness(type=t, multiplier=m) for t, m in CHART.weaknesses(types)]


def species_info(name: str) -> SpeciesInfo:
    """The API's entry for one colour-Pokédex species."""
    e = BY_NAME[name]
    return SpeciesInfo(
        name=e.name,
        display_name=e.display_name,
        national_number=e.number,
        generation=1,
        types=list(e.types),
        stats=dict(zip(STATS, e.stats, strict=True)),
        description=e.description,
        weaknesses=weaknesses(e.types),
    )


PREDICTION_ID = "0193a4e2-7c1d-7abc-8def-0123456789ab"  # a UUIDv7, as the API mints them


def prediction(
    top: list[tuple[str, float]],
    *,
    known: bool = True,
    id: str | None = PREDICTION_ID,
    image_sha256: str | None = None,
) -> PredictResponse:
    """A /v1/predict answer ranking ``top`` (species name, probability)."""
    info = species_info(top[0][0])
    return PredictResponse(
        id=id,
        image_sha256=image_sha256,
        species=[
            SpeciesScore(
                name=n,
                display_name=BY_NAME[n].display_name,
                national_number=BY_NAME[n].number,
                probability=p,
            )
            for n, p in top
        ],
        known=known,
        types=info.types,
        stats=info.stats,
        weaknesses=info.weaknesses,
        request_id="req-123",
        model=MODEL,
        latency_ms=12.5,
    )


NO_VERDICTS = FeedbackAccuracy(
    window="500",
    verdicts=0,
    agreeing=0,
    accuracy=None,
    by_verdict={"correct": 0, "species": 0, "not_pokemon": 0},
)
PIKACHU = [("pikachu", 0.62), ("charmander", 0.2), ("jigglypuff", 0.1), ("geodude", 0.05),
           ("snorlax", 0.03)]  # fmt: skip


def _metrics_text() -> str:
    metrics = Metrics()
    for seconds in PREDICT_LATENCIES_S:
        metrics.request_latency.labels(route="/v1/predict", method="POST", status="200").observe(
            seconds
        )
    # errors and other routes must not count towards the prediction latency
    metrics.request_latency.labels(route="/v1/predict", method="POST", status="415").observe(9.0)
    metrics.request_latency.labels(route="/v1/model", method="GET", status="200").observe(5.0)
    return generate_latest(metrics.registry).decode()


@dataclass
class Reply:
    """A canned answer: status, body (JSON-encoded unless bytes), a delay before it, and
    headers of its own (Retry-After...)."""

    body: Any
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeApi:
    """Routes ``(method, path) -> Reply``; every request is recorded as (method, path, query)."""

    url: str = ""
    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def calls(self, method: str, path: str) -> int:
        """How many requests hit this route."""
        return sum(1 for m, p, _ in self.requests if (m, p) == (method, path))

    def set(
        self,
        method: str,
        path: str,
        body: Any,
        status: int = 200,
        delay_s: float = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``method path`` with ``body`` from now on."""
        self.routes[(method, path)] = Reply(body, status, delay_s, headers or {})

    def sent(self, method: str, path: str) -> list[bytes]:
        """The bodies of the requests that hit this route, in order."""
        return [
            body
            for (m, p, _), body in zip(self.requests, self.bodies, strict=True)
            if (m, p) == (method, path)
        ]


def default_routes() -> dict[tuple[str, str], Reply]:
    """Answers of a healthy API serving the colour Pokédex."""
    record, pairs = embedding_map(sprite_means())
    index = SpeciesList(
        total=len(SPECIES),
        items=[
            SpeciesSummary(
                name=e.name,
                display_name=e.display_name,
                national_number=e.number,
                types=list(e.types),
            )
            for e in SPECIES
        ],
    )
    info = ModelInfo(
        **MODEL.model_dump(),
        num_classes=len(SPECIES),
        input_size=64,
        background=(255, 255, 255),
        open_set=OpenSetInfo(score="energy", threshold=-0.5),
        metrics={"test/acc_top1": 0.9123, "test/acc_top5": 0.99, "test/loss": 0.3051},
        confused_pairs=[ConfusedPair.model_validate(p) for p in pairs],
        loaded_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
    )
    routes = {
        ("GET", "/v1/model"): Reply(info),
        ("GET", "/v1/species"): Reply(index),
        ("GET", "/v1/model/embeddings"): Reply(record),
        ("GET", "/metrics"): Reply(_metrics_text().encode()),
        ("POST", "/v1/predict"): Reply(prediction(PIKACHU)),
        ("GET", "/v1/monitoring/feedback"): Reply(NO_VERDICTS),  # it takes verdicts: a log
    }
    for e in SPECIES:
        routes[("GET", f"/v1/species/{e.name}")] = Reply(species_info(e.name))
    for t in ("normal", "fire", "electric"):
        routes[("GET", f"/v1/types/{t}")] = Reply(TypeMatchups.model_validate(CHART.matchups(t)))
    return routes


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            api.bodies.append(self.rfile.read(length) if length else b"")
            api.requests.append((method, parts.path, parse_qs(parts.query)))
            reply = api.routes.get((method, parts.path)) or Reply({"detail": "Not Found"}, 404)
            time.sleep(reply.delay_s)
            body = reply.body
            if isinstance(body, bytes):
                data, kind = body, "text/plain"
            else:
                if hasattr(body, "model_dump"):
                    body = body.model_dump(mode="json")
                data, kind = json.dumps(body).encode(), "application/json"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    """A fake API listening on 127.0.0.1 with the healthy default answers."""
    api = FakeApi(routes=default_routes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client(fake_api: FakeApi) -> PokedexApi:
    """The UI's HTTP client pointed at the fake API, with a short timeout."""
    return PokedexApi(fake_api.url, timeout_s=2.0)


MakeApp = Callable[..., AppTest]


@pytest.fixture
def make_app(fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> MakeApp:
    """Factory: an AppTest of the UI talking to ``api_url`` (default: the fake API)."""

    def make(api_url: str | None = None, timeout_s: float = 2.0) -> AppTest:
        monkeypatch.setenv("POKEDEX_API_URL", api_url or fake_api.url)
        monkeypatch.setenv("POKEDEX_API_TIMEOUT_S", str(timeout_s))
        return AppTest.from_file(str(APP), default_timeout=60)

    return make


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Streamlit caches live in the process: no test may see another's answers."""
    for key in ("POKEDEX_API_URL", "POKEDEX_API_TIMEOUT_S", "POKEDEX_API_PUBLIC_URL"):
        monkeypatch.delenv(key, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
