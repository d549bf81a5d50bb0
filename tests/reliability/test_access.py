"""Who may do what: admin reload and CORS on a real server (RELIABILITY.md T20; issue #10).

The in-process cases (token forms, every refused REF shape, atomic swap) are in
tests/serving/test_admin.py; here the same rules hold on `pokedex serve`, reloads happen under
load, and a local listener proves a refused REF never causes an outbound connection.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import encode, sprite
from tests.figures import Figure
from tests.reliability.conftest import (
    ADMIN_TOKEN,
    UI_ORIGIN,
    Server,
    env_number,
    percentile_ms,
    start_server,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RELOADS = int(env_number("POKEDEX_RELOADS", 10))
PNG = encode(sprite(2), "PNG")


@pytest.fixture(scope="module")
def plain_api(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    """A server with nothing configured: no admin token, no CORS origins."""
    server = start_server(tmp_path_factory.mktemp("plain"), model_dir / "v1", threads=1)
    yield server
    server.stop()


@pytest.fixture
def listener() -> Iterator[list[tuple[str, int]]]:
    """A TCP listener on 127.0.0.1 that records every connection made to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.1)
    accepted: list[tuple[str, int]] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, address = sock.accept()
            except TimeoutError:
                continue
            accepted.append(address)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    accepted.append(("port", sock.getsockname()[1]))  # the first entry names the port
    yield accepted
    stop.set()
    thread.join(5)
    sock.close()


def test_admin_route_is_absent_without_a_token(plain_api: Server) -> None:
    response = httpx.post(f"{plain_api.url}/v1/admin/reload", json={"model": "x"}, headers=AUTH)
    assert response.status_code == 404
    assert "/v1/admin" not in httpx.get(f"{plain_api.url}/openapi.json").text


def test_admin_refuses_bad_credentials_and_outside_refs(
    api: Server, model_dir: Path, listener: list[tuple[str, int]], figure: Figure
) -> None:
    port = listener[0][1]
    reload_url = f"{api.url}/v1/admin/reload"
    target = {"model": str(model_dir / "v2")}
    refused_auth = [
        httpx.post(reload_url, json=target, headers=headers).status_code
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"Authorization": ADMIN_TOKEN},
        )
    ]
    refused_auth.append(httpx.post(f"{reload_url}?token={ADMIN_TOKEN}", json=target).status_code)
    refs = [
        f"http://127.0.0.1:{port}/bundle",
        f"https://127.0.0.1:{port}/bundle",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        f"gs://127.0.0.1:{port}/bucket",
        "../../etc",
        f"{model_dir}/../outside",
        "/etc",
        "models:/../../x",
        "models:/pokedex@production#frag",
    ]
    refused_refs = [
        httpx.post(reload_url, json={"model": ref}, headers=AUTH).status_code for ref in refs
    ]
    broken = model_dir / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "bundle.json").write_text("{not json")
    corrupt = httpx.post(reload_url, json={"model": str(broken)}, headers=AUTH, timeout=60)
    time.sleep(0.5)  # a connection attempt would have arrived by now
    connections = len(listener) - 1
    version = httpx.get(f"{api.url}/v1/model").json()["version"]
    assert refused_auth == [401] * len(refused_auth)
    assert refused_refs == [400] * len(refs)
    assert corrupt.status_code == 422
    assert connections == 0
    assert version == "v1"
    figure(
        "T20",
        f"{len(refused_auth)} bad credentials -> 401, {len(refs)} outside REFs -> 400, corrupt "
        f"bundle -> 422 with v1 still served; outbound connections {connections}",
    )


def test_reloads_under_load_never_fail_a_prediction(
    api: Server, model_dir: Path, figure: Figure
) -> None:
    stop = threading.Event()
    answers: Counter[str] = Counter()

    def predict() -> None:
        with httpx.Client(base_url=api.url, timeout=60) as http:
            while not stop.is_set():
                response = http.post("/v1/predict", files={"file": PNG})
                version = response.json()["model"]["version"] if response.is_success else None
                answers[f"{response.status_code} {version}"] += 1

    clients = [threading.Thread(target=predict, daemon=True) for _ in range(4)]
    for c in clients:
        c.start()
    durations = []
    try:
        with httpx.Client(base_url=api.url, headers=AUTH, timeout=120) as admin:
            for k in range(RELOADS):
                start = time.perf_counter()
                target = model_dir / ("v2" if k % 2 == 0 else "v1")
                response = admin.post("/v1/admin/reload", json={"model": str(target)})
                durations.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
                time.sleep(0.1)
            if RELOADS % 2:
                admin.post("/v1/admin/reload", json={"model": str(model_dir / "v1")})
    finally:
        stop.set()
        for c in clients:
            c.join(60)
    failed = sum(n for answer, n in answers.items() if not answer.startswith("200"))
    assert failed == 0, answers
    assert {"200 v1", "200 v2"} <= set(answers)
    figure(
        "T20",
        f"{RELOADS} reloads under 4 clients: {sum(answers.values())} predictions, {failed} "
        f"failed, answers {dict(answers)}; reload p50 {percentile_ms(durations, 50):.0f} ms, "
        f"max {percentile_ms(durations, 100):.0f} ms",
    )


def _preflight(url: str, origin: str) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    return httpx.options(f"{url}/v1/predict", headers=headers)


def test_cors_allows_the_configured_ui_origin_only(
    api: Server, plain_api: Server, figure: Figure
) -> None:
    evil = "https://evil.example"
    allow = "access-control-allow-origin"
    ui = _preflight(api.url, UI_ORIGIN)
    assert ui.status_code == 200
    assert ui.headers[allow] == UI_ORIGIN
    refused = _preflight(api.url, evil)
    assert refused.status_code == 400
    assert allow not in refused.headers
    simple = httpx.get(f"{api.url}/healthz", headers={"Origin": evil})
    assert allow not in simple.headers
    assert (
        httpx.get(f"{api.url}/healthz", headers={"Origin": UI_ORIGIN}).headers[allow] == UI_ORIGIN
    )
    for origin in (UI_ORIGIN, evil):
        assert (
            allow not in httpx.get(f"{plain_api.url}/healthz", headers={"Origin": origin}).headers
        )
    figure(
        "cors",
        f"POKEDEX_CORS_ORIGINS=[{UI_ORIGIN}]: its preflight 200, another origin's 400 with no "
        "allow header; nothing configured: no CORS header for any origin",
    )
