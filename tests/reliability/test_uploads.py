"""Hostile uploads against a real server: never a 5xx, bounded memory, always answering.

RELIABILITY.md T11 (malformed uploads), T12 (decompression bombs), T22 (metric series stay
bounded). The same checks run in-process, one case each, in tests/serving/test_limits.py.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import encode, sprite
from tests.figures import Figure
from tests.reliability.conftest import Server, percentile_ms
from tests.reliability.payloads import Upload, hostile_uploads

MAX_RSS_GROWTH_MB = 50  # RELIABILITY.md T11
MAX_BOMB_RSS_MB = 100  # T12: a decoded 100 Mpx RGB image would take ~300 MB
# the whole multipart body is refused for these, so they cannot be items of a batch
_NOT_BATCHABLE = {"filename-10k", "filename-empty"}


def _part(up: Upload) -> tuple[Any, ...]:
    if up.content_type is None:
        return (up.filename, up.data)
    return (up.filename, up.data, up.content_type)


def _assert_answer(up: Upload, response: httpx.Response) -> None:
    assert response.status_code in up.expected, (up.name, response.status_code, response.text)
    if response.status_code != 200:
        detail = response.json()["detail"]
        assert detail, up.name
        assert "Traceback" not in response.text


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def uploads() -> list[Upload]:
    """The hostile inputs, built once."""
    return hostile_uploads()


def test_hostile_uploads_never_get_a_5xx(
    api: Server, uploads: list[Upload], figure: Figure
) -> None:
    before = _files_under(api.folder)
    outside = Path("/tmp/evil.png").exists()
    statuses: Counter[int] = Counter()
    rejections: list[float] = []
    bombs: dict[str, tuple[float, float]] = {}
    with httpx.Client(base_url=api.url, timeout=120) as http:
        assert http.post("/v1/predict", files={"file": encode(sprite(1), "PNG")}).status_code == 200
        rss_start = api.rss_mb()
        for up in uploads:
            start = time.perf_counter()
            response = http.post("/v1/predict", files={"file": _part(up)})
            elapsed = time.perf_counter() - start
            _assert_answer(up, response)
            statuses[response.status_code] += 1
            if response.status_code != 200:
                rejections.append(elapsed)
            if "bomb" in up.name:
                bombs[up.name] = (elapsed, api.rss_mb() - rss_start)
            assert api.healthy(), f"server stopped answering after {up.name}"
        for name, kwargs in {
            "no-file": {},
            "misnamed-field": {"files": {"image": encode(sprite(1), "PNG")}},
            "json-body": {"json": {"file": "aGVsbG8="}},
            "urlencoded-body": {"data": {"file": "x"}},
        }.items():
            response = http.post("/v1/predict", **kwargs)
            assert response.status_code == 422, (name, response.text)
            statuses[422] += 1
        batchable = [up for up in uploads if up.name not in _NOT_BATCHABLE]
        response = http.post("/v1/predict/batch", files=[("files", _part(up)) for up in batchable])
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["index"] for item in items] == list(range(len(batchable)))
        for up, item in zip(batchable, items, strict=True):
            status = item["error"]["status"] if item["error"] else 200
            assert status in up.expected, (up.name, item)
        rss_end = api.rss_mb()
    assert api.healthy()
    new_files = _files_under(api.folder) - before
    assert all(name.startswith("predictions.db") for name in new_files), new_files
    assert Path("/tmp/evil.png").exists() == outside  # nothing written under a client's name
    assert rss_end - rss_start < MAX_RSS_GROWTH_MB
    for name, (_, rss_delta) in bombs.items():
        assert rss_delta < MAX_BOMB_RSS_MB, name
    five_xx = sum(n for status, n in statuses.items() if status >= 500)
    assert five_xx == 0
    singles = sum(statuses.values())
    figure(
        "T11",
        f"{singles} single uploads + a batch of {len(batchable)} hostile items: "
        f"{five_xx} x 5xx; statuses {dict(sorted(statuses.items()))}; "
        f"rejection p50 {percentile_ms(rejections, 50):.0f} ms, "
        f"p99 {percentile_ms(rejections, 99):.0f} ms; RSS {rss_start:.0f} -> {rss_end:.0f} MB; "
        "/healthz 200 after every input; no file written",
    )
    slowest = max(seconds for seconds, _ in bombs.values())
    figure(
        "T12",
        f"{len(bombs)} bombs (PNG 50000² and 10000², WebP 16383², GIF 65535², JPEG 65535² and "
        f"10000²) rejected from "
        f"the header, slowest {1000 * slowest:.0f} ms; RSS delta "
        f"max {max(d for _, d in bombs.values()):+.1f} MB",
    )


def _series(http: httpx.Client) -> set[str]:
    """Every metric series (name and labels, without the value) the server exports."""
    text = http.get("/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


def _traffic(http: httpx.Client, uploads: list[Upload], tag: str) -> None:
    """The same requests each round; only client-chosen names and paths change."""
    for up in uploads:
        http.post("/v1/predict", files={"file": (f"{tag}-{up.filename}", up.data)})
    http.get(f"/v1/species/{tag}")
    http.get(f"/v1/types/{tag}")
    http.get(f"/{tag}/../../etc/passwd")
    http.post(f"/v1/predict/{tag}", files={"file": b""})
    http.request("PURGE", f"/{tag}")


def test_metric_series_do_not_grow_with_client_names(
    api: Server, uploads: list[Upload], figure: Figure
) -> None:
    some = [up for up in uploads if up.name in {"empty", "svg", "png-bomb-50000", "cmyk-jpeg"}]
    with httpx.Client(base_url=api.url, timeout=120) as http:
        _series(http)  # the scrape itself is a request: its own series exist from here on
        _traffic(http, some, f"first{uuid.uuid4().hex}")
        first = _series(http)
        tag = f"second{uuid.uuid4().hex}"
        _traffic(http, some, tag)
        start = time.perf_counter()
        second = _series(http)
        scrape_ms = 1000 * (time.perf_counter() - start)
    assert second == first
    assert not any(tag in series for series in second)
    routes = set(re.findall(r'route="([^"]*)"', "\n".join(second)))
    assert "unmatched" in routes
    figure(
        "T22",
        f"{len(first)} series before and {len(second)} after a second round of hostile "
        f"requests with new names and paths; route labels {sorted(routes)}; "
        f"scrape {scrape_ms:.0f} ms",
    )
