"""The feedback loop's API against a real server on 127.0.0.1: good verdicts, hostile input,
a flood from one client, kept images and their deletion, the accuracy route and counters.

Each test talks from its own loopback address (127.0.0.2, .3, ...): the rate limit is per
client address, so one test's flood never spends another test's allowance.
"""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pokedex.serving.app import create_app
from pokedex.store.ids import new_prediction_id
from tests.conftest import encode, sprite
from tests.serving.conftest import MakeSettings, serving_process

TOKEN = "feedback-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BURST = 40
_addresses = (f"127.0.0.{i}" for i in itertools.count(2))


@pytest.fixture(scope="module")
def live(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `serve()` process with the admin routes and a small per-client allowance."""
    db = tmp_path_factory.mktemp("feedback") / "predictions.db"
    with serving_process(
        model=str(model_root / "v1"), threads=1, prediction_log_url=f"sqlite:///{db}",
        admin_token=TOKEN, model_roots=[str(model_root)], log_level="warning",
        feedback_burst=BURST, feedback_per_minute=60.0, feedback_pending_s=30.0,
    ) as (proc, base):  # fmt: skip
        yield base, db
        assert proc.poll() is None, "the server died"


@pytest.fixture
def http(live: tuple[str, Path]) -> Iterator[httpx.Client]:
    """A client of the live server from a loopback address of its own."""
    transport = httpx.HTTPTransport(local_address=next(_addresses))
    with httpx.Client(base_url=live[0], transport=transport, timeout=30) as client:
        yield client


def _predict(http: httpx.Client, data: bytes | None = None, **params: object) -> dict:
    png = data or encode(sprite(1), "PNG")
    response = http.post("/v1/predict", params=params, files={"file": ("x.png", png)})
    assert response.status_code == 200, response.text
    return response.json()


def _photo_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    buf = io.BytesIO()
    sprite(7, rgb=True, size=(300, 200)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_every_answer_carries_an_id_and_takes_one_verdict(http: httpx.Client) -> None:
    answer = _predict(http)
    prediction_id = uuid.UUID(answer["id"])
    assert prediction_id.version == 7
    assert answer["image_sha256"] is None  # nothing kept unless asked
    # the answer came once its row was committed: the verdict is accepted at once
    first = http.post("/v1/feedback", json={"prediction_id": answer["id"], "verdict": "correct"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["verdict"] == "correct"
    assert body["species"] == answer["species"][0]["name"]
    assert body["agrees"] is True
    second = http.post("/v1/feedback", json={"prediction_id": answer["id"], "verdict": "gengar"})
    assert second.status_code == 409
    assert "already has a verdict" in second.json()["detail"]

    batch = http.post("/v1/predict/batch", files=[("files", ("a.png", encode(sprite(2), "PNG")))])
    [item] = batch.json()["items"]
    assert uuid.UUID(item["prediction"]["id"]).version == 7


def test_species_and_not_pokemon_verdicts(http: httpx.Client) -> None:
    a, b = _predict(http), _predict(http)
    named = http.post("/v1/feedback", json={"prediction_id": a["id"], "verdict": "Mr. Mime"})
    assert named.status_code == 201, named.text
    assert (named.json()["verdict"], named.json()["species"]) == ("species", "mr-mime")
    none = http.post("/v1/feedback", json={"prediction_id": b["id"], "verdict": "not_pokemon"})
    assert none.json() | {"received_at": None} == {
        "prediction_id": b["id"],
        "verdict": "not_pokemon",
        "species": None,
        "agrees": False,  # the tiny bundle calls everything known
        "received_at": None,
    }
    unknown = http.post(
        "/v1/feedback", json={"prediction_id": _predict(http)["id"], "verdict": "missingno"}
    )
    assert unknown.status_code == 422
    assert "unknown species 'missingno'" in unknown.json()["detail"]
    assert "/v1/species" in unknown.json()["detail"]


def test_unknown_and_not_yet_recorded_ids(http: httpx.Client) -> None:
    old = http.post("/v1/feedback", json={"prediction_id": str(uuid.uuid4()), "verdict": "correct"})
    assert old.status_code == 404
    assert "no prediction with id" in old.json()["detail"]
    # an id minted just now that the log does not hold (yet): come back in a second
    fresh = http.post(
        "/v1/feedback", json={"prediction_id": str(new_prediction_id()), "verdict": "correct"}
    )
    assert fresh.status_code == 409
    assert fresh.headers["Retry-After"] == "1"
    assert "not recorded yet" in fresh.json()["detail"]
    stale = new_prediction_id(now_ms=1_600_000_000_000)  # minted in 2020
    assert (
        http.post(
            "/v1/feedback", json={"prediction_id": str(stale), "verdict": "correct"}
        ).status_code
        == 404
    )


HOSTILE: list[tuple[str, dict[str, object]]] = [
    (
        "malformed json",
        {"content": b'{"prediction_id": ', "headers": {"Content-Type": "application/json"}},
    ),
    (
        "not json",
        {"content": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/json"}},
    ),
    ("empty body", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    ("a list", {"json": [1, 2, 3]}),
    ("a string", {"json": "correct"}),
    ("missing verdict", {"json": {"prediction_id": "00000000-0000-0000-0000-000000000000"}}),
    ("missing id", {"json": {"verdict": "correct"}}),
    ("id is a number", {"json": {"prediction_id": 123, "verdict": "correct"}}),
    ("id is sql", {"json": {"prediction_id": "1' OR '1'='1", "verdict": "correct"}}),
    ("verdict is a list", {"json": {"prediction_id": str(uuid.uuid4()), "verdict": ["correct"]}}),
    ("verdict is null", {"json": {"prediction_id": str(uuid.uuid4()), "verdict": None}}),
    ("verdict is empty", {"json": {"prediction_id": str(uuid.uuid4()), "verdict": ""}}),
    ("verdict too long", {"json": {"prediction_id": str(uuid.uuid4()), "verdict": "a" * 101}}),
    (
        "extra field",
        {"json": {"prediction_id": str(uuid.uuid4()), "verdict": "correct", "admin": True}},
    ),
    ("sql verdict", {"json": {"prediction_id": "PRED", "verdict": "x'); DROP TABLE feedback; --"}}),
    ("unicode verdict", {"json": {"prediction_id": "PRED", "verdict": "ピカチュウ\u202e\u0000🔥"}}),
    ("form body", {"data": {"prediction_id": "PRED", "verdict": "correct"}}),
    (
        "too big",
        {
            "content": b'{"verdict": "' + b"x" * 8000 + b'"}',
            "headers": {"Content-Type": "application/json"},
        },
    ),
    (
        "huge",
        {"content": b"x" * (11 * 1024 * 1024), "headers": {"Content-Type": "application/json"}},
    ),
]


def test_hostile_input_gets_a_clear_4xx(http: httpx.Client, live: tuple[str, Path]) -> None:
    prediction_id = _predict(http)["id"]
    statuses = {}
    for name, request in HOSTILE:
        if "json" in request:
            request = {
                **request,
                "json": json.loads(json.dumps(request["json"]).replace("PRED", prediction_id)),
            }
        response = http.post("/v1/feedback", **request)
        statuses[name] = response.status_code
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert response.json()["detail"], name
    assert statuses["huge"] == statuses["too big"] == 413
    assert statuses["sql verdict"] == statuses["unicode verdict"] == 422  # unknown species
    assert http.get("/v1/feedback").status_code == 405
    # nothing was recorded or broken: the prediction still takes its one verdict
    ok = http.post("/v1/feedback", json={"prediction_id": prediction_id, "verdict": "correct"})
    assert ok.status_code == 201, ok.text
    with sqlite3.connect(live[1]) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feedback", "predictions", "kept_images", "alembic_version"} <= tables


def test_a_flood_from_one_client_is_limited_and_spares_the_others(
    http: httpx.Client, live: tuple[str, Path]
) -> None:
    prediction_id = str(uuid.uuid4())  # unknown: every verdict that passes the limit is a 404
    body = {"prediction_id": prediction_id, "verdict": "correct"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http.post("/v1/feedback", json=body), range(120)))
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {404, 429}, statuses
    assert BURST <= statuses[404] <= BURST + 5  # the burst, and what trickled in meanwhile
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert "too many verdicts" in limited.json()["detail"]
    # another client is not affected
    other = httpx.Client(
        base_url=live[0], transport=httpx.HTTPTransport(local_address=next(_addresses))
    )
    with other:
        assert other.post("/v1/feedback", json=body).status_code == 404
    metrics = http.get("/metrics").text
    assert 'pokedex_feedback_refused_total{reason="rate_limited"}' in metrics


def test_kept_images_are_clean_and_deleted_everywhere(
    http: httpx.Client, live: tuple[str, Path]
) -> None:
    photo = _photo_with_gps()
    answer = _predict(http, photo, keep_image="true")
    sha = answer["image_sha256"]
    assert sha is not None
    with sqlite3.connect(live[1]) as conn:
        [(data,)] = conn.execute("SELECT data FROM kept_images WHERE sha256 = ?", (sha,)).fetchall()
    assert b"SecretCam" not in data
    assert not Image.open(io.BytesIO(data)).getexif()
    again = _predict(http, photo, keep_image="true")
    assert again["image_sha256"] == sha  # content-addressed

    assert http.delete(f"/v1/admin/images/{sha}").status_code == 401
    assert http.delete("/v1/admin/images/not-a-key", headers=AUTH).status_code == 422
    gone = http.delete(f"/v1/admin/images/{again['id']}", headers=AUTH)
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"sha256": sha, "kept_images": 1, "links": 2, "logged_images": 0}
    assert http.delete(f"/v1/admin/images/{sha}", headers=AUTH).status_code == 404
    with sqlite3.connect(live[1]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM kept_images WHERE sha256 = ?", (sha,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM prediction_images WHERE sha256 = ?", (sha,)
        ).fetchone() == (0,)


def test_review_and_accuracy_routes(http: httpx.Client) -> None:
    answer = _predict(http)
    assert (
        http.post(
            f"/v1/admin/feedback/{answer['id']}/review", json={"review": "accepted"}, headers=AUTH
        ).status_code
        == 404
    )
    http.post("/v1/feedback", json={"prediction_id": answer["id"], "verdict": "correct"})
    reviewed = http.post(
        f"/v1/admin/feedback/{answer['id']}/review", json={"review": "accepted"}, headers=AUTH
    )
    assert reviewed.json() == {"prediction_id": answer["id"], "review": "accepted"}
    bad = http.post(
        f"/v1/admin/feedback/{answer['id']}/review", json={"review": "maybe"}, headers=AUTH
    )
    assert bad.status_code == 422
    accuracy = http.get("/v1/monitoring/feedback", params={"window": "7d"}).json()
    assert accuracy["verdicts"] >= 1
    assert 0 <= accuracy["accuracy"] <= 1
    assert set(accuracy["by_verdict"]) == {"correct", "species", "not_pokemon"}
    assert http.get("/v1/monitoring/feedback", params={"window": "soon"}).status_code == 422
    metrics = http.get("/metrics").text
    assert 'pokedex_feedback_verdicts_total{verdict="correct"}' in metrics
    assert "pokedex_feedback_accuracy_ratio" in metrics


def test_without_a_prediction_log_feedback_is_a_clear_404(
    make_settings: MakeSettings, png: bytes
) -> None:
    with TestClient(create_app(make_settings(prediction_log_url=""))) as client:
        answer = client.post("/v1/predict?keep_image=true", files={"file": png}).json()
        assert answer["id"] is not None
        assert answer["image_sha256"] is None  # nowhere to keep it
        response = client.post(
            "/v1/feedback", json={"prediction_id": answer["id"], "verdict": "correct"}
        )
        assert response.status_code == 404
        assert "prediction log is off" in response.json()["detail"]


def test_a_verdict_that_beats_its_row_to_the_log_is_asked_to_retry(
    make_settings: MakeSettings, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the answer does not wait for the commit (wait 0) and the writer is slow: the verdict
    # arrives before the row, and must be told to come back, never that the id is unknown
    import threading
    import time

    from pokedex.store.predlog import PredictionLog

    slow_write = PredictionLog._write
    release = threading.Event()

    def held(self: PredictionLog, rows: list) -> bool:
        release.wait(10)
        return slow_write(self, rows)

    monkeypatch.setattr(PredictionLog, "_write", held)
    with TestClient(create_app(make_settings(prediction_log_wait_ms=0))) as client:
        answer = client.post("/v1/predict", files={"file": png}).json()
        body = {"prediction_id": answer["id"], "verdict": "correct"}
        early = client.post("/v1/feedback", json=body)
        assert early.status_code == 409
        assert early.headers["Retry-After"] == "1"
        assert "not recorded yet" in early.json()["detail"]
        release.set()
        deadline = time.monotonic() + 10
        while (late := client.post("/v1/feedback", json=body)).status_code == 409:
            assert time.monotonic() < deadline, late.text
            time.sleep(0.05)
        assert late.status_code == 201, late.text
