"""API behaviour a client relies on, on a real server (RELIABILITY.md T14, T19, T21).

- batches keep their order, isolate bad items and log one row per predicted item;
- thousands of health probes cost no memory;
- a locked prediction log slows answers by a bounded wait and loses no row.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import encode, sprite
from tests.figures import Figure
from tests.reliability.conftest import Server, env_number, percentile_ms, start_server

BATCHES = int(env_number("POKEDEX_BATCHES", 50))
PROBES = int(env_number("POKEDEX_PROBES", 2000))
LOCK_S = env_number("POKEDEX_LOG_LOCK_S", 3)
MAX_PROBE_RSS_MB = 5  # BentoML #5552: readiness checks that leaked


def _pool() -> tuple[list[bytes], dict[bytes, int]]:
    """Valid images in three formats, and bad ones with the status each must get."""
    good = [encode(sprite(20 + i), "PNG") for i in range(4)]
    good += [encode(sprite(30 + i)) for i in range(2)]
    good += [encode(sprite(40 + i, rgb=True), "JPEG", quality=85) for i in range(2)]
    bad = {b"": 400, b"not an image at all": 400, good[0][:200]: 400}
    return good, bad


def test_batches_keep_order_and_log_one_row_per_item(api: Server, figure: Figure) -> None:
    good, bad = _pool()
    rng = random.Random(0)
    mismatches = rows_expected = 0
    with httpx.Client(base_url=api.url, timeout=120) as http:
        single = {}
        for image in good:
            body = http.post("/v1/predict", files={"file": image}).json()
            single[image] = (body["species"][0]["name"], body["species"][0]["probability"])
        batches = [[*[good[i % len(good)] for i in range(17)], b"", *good[:14]]]  # bad at 17
        batches += [rng.choices(good + list(bad), k=rng.randint(1, 32)) for _ in range(BATCHES - 1)]
        for k, batch in enumerate(batches):
            rid = f"t14-{k}"
            response = http.post(
                "/v1/predict/batch",
                files=[("files", (f"{j}.img", image)) for j, image in enumerate(batch)],
                headers={"X-Request-ID": rid},
            )
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            assert len(items) == len(batch)
            for j, (image, item) in enumerate(zip(batch, items, strict=True)):
                ok = item["index"] == j and item["filename"] == f"{j}.img"
                if image in bad:
                    ok = ok and item["error"]["status"] == bad[image]
                else:
                    top = item["prediction"]["species"][0]
                    name, probability = single[image]
                    ok = ok and top["name"] == name
                    ok = ok and abs(top["probability"] - probability) < 1e-5
                mismatches += not ok
            valid = sum(image not in bad for image in batch)
            rows_expected += valid
            assert api.rows_soon(valid, "request_id = ?", rid) == valid
    assert mismatches == 0
    figure(
        "T14",
        f"{len(batches)} random batches of 1-32 mixed PNG/WebP/JPEG/bad items (bad at index 17 "
        f"in a batch of 32): order or result mismatches {mismatches}; log rows "
        f"{rows_expected} == valid items",
    )


def test_health_probes_do_not_leak(api: Server, figure: Figure) -> None:
    latencies = []
    with httpx.Client(base_url=api.url, timeout=30) as http:
        for _ in range(200):  # warm-up: first allocations of the routes
            http.get("/healthz")
        rss_start = api.rss_mb()
        for i in range(PROBES):
            start = time.perf_counter()
            response = http.get("/healthz" if i % 2 else "/readyz")
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200
    growth = api.rss_mb() - rss_start
    assert growth < MAX_PROBE_RSS_MB
    figure(
        "T19",
        f"{PROBES} /healthz + /readyz probes: RSS {growth:+.1f} MB, "
        f"p50 {percentile_ms(latencies, 50):.1f} ms, p99 {percentile_ms(latencies, 99):.1f} ms",
    )


def _counter(http: httpx.Client, name: str) -> float:
    text = http.get("/metrics").text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


@pytest.mark.parametrize("journal", ["auto", ""], ids=["journal", "no-journal"])
def test_a_locked_prediction_log_slows_answers_boundedly_and_loses_nothing(
    tmp_path: Path, model_dir: Path, figure: Figure, journal: str
) -> None:
    api = start_server(tmp_path / "api", model_dir / "v1", prediction_journal=journal)
    try:
        ids, latencies, late, written, lost = _predict_while_locked(api)
    finally:
        api.stop()
    assert written + lost == len(ids)
    if journal:  # rows are safe in the journal: answers never wait for the locked database
        assert late == 0
        assert lost == 0
    else:
        assert late == len(ids)  # every answer during the lock came after the bounded wait
    figure(
        "T21",
        f"log locked (BEGIN EXCLUSIVE) for {LOCK_S:g} s, journal {'on' if journal else 'off'}: "
        f"{len(ids)} predictions all 200, latency p50 {percentile_ms(latencies, 50):.0f} ms / "
        f"max {percentile_ms(latencies, 100):.0f} ms (wait bound 500 ms); {late:.0f} counted "
        f"unconfirmed; rows written after release {written}, dropped {lost:.0f}",
    )


def _predict_while_locked(api: Server) -> tuple[list[str], list[float], float, int, float]:
    """Predict for LOCK_S seconds while another connection holds the log's database."""
    png = encode(sprite(3), "PNG")
    ids, latencies = [], []
    with httpx.Client(base_url=api.url, timeout=60) as http:
        assert http.post("/v1/predict", files={"file": png}).status_code == 200  # table exists
        unconfirmed = _counter(http, "pokedex_prediction_log_unconfirmed_total")
        dropped = _counter(http, "pokedex_prediction_log_dropped_total")
        lock = sqlite3.connect(api.db, timeout=30, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            deadline = time.monotonic() + LOCK_S
            while time.monotonic() < deadline:
                rid = f"t21-{len(ids)}"
                start = time.perf_counter()
                response = http.post(
                    "/v1/predict", files={"file": png}, headers={"X-Request-ID": rid}
                )
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 200
                ids.append(rid)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        late = _counter(http, "pokedex_prediction_log_unconfirmed_total") - unconfirmed
        written = api.rows_soon(len(ids), "request_id LIKE 't21-%'", timeout=60)
        lost = _counter(http, "pokedex_prediction_log_dropped_total") - dropped
    return ids, latencies, late, written, lost
