"""The routes with a started app: predictions, dex look-ups, model info, probes, metrics."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pokedex.benchmarks.loadgen import CONTENT_TYPE, request_bodies
from pokedex.serving.app import create_app
from tests.serving.conftest import CLASSES, MakeSettings


def _answer(prediction: dict[str, Any]) -> dict[str, Any]:
    """A prediction without its id, which is unique to each."""
    return {k: v for k, v in prediction.items() if k != "id"}


def test_predict_returns_the_contract(client: TestClient, png: bytes) -> None:
    response = client.post("/v1/predict?top_k=3", files={"file": ("x.png", png, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["species"]) == 3
    probabilities = [s["probability"] for s in body["species"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(s["name"] in CLASSES for s in body["species"])
    assert body["known"] is True  # the bundle has no open_set rule
    assert body["model"] == {"name": "pokedex-test", "version": "v1", "variant": "fp32"}
    assert body["latency_ms"] > 0
    assert body["request_id"] == response.headers["X-Request-ID"]
    top1 = body["species"][0]["name"]
    facts = client.get(f"/v1/species/{top1}").json()
    assert body["types"] == facts["types"]
    assert body["stats"] == facts["stats"]
    assert body["weaknesses"] == facts["weaknesses"]


def test_probabilities_sum_to_one_over_all_classes(client: TestClient, png: bytes) -> None:
    body = client.post(f"/v1/predict?top_k={len(CLASSES)}", files={"file": png}).json()
    assert sum(s["probability"] for s in body["species"]) == pytest.approx(1.0, abs=1e-4)


def test_every_accepted_format_predicts(client: TestClient, images: dict[str, bytes]) -> None:
    for fmt, data in images.items():
        response = client.post("/v1/predict", files={"file": (f"a.{fmt}", data)})
        assert response.status_code == 200, (fmt, response.text)


def test_format_is_sniffed_not_taken_from_the_name(client: TestClient, png: bytes) -> None:
    response = client.post("/v1/predict", files={"file": ("photo.gif", png, "image/gif")})
    assert response.status_code == 200


def test_client_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 50})
    assert unsafe.headers["X-Request-ID"] != "a b\tc" * 50


def test_batch_keeps_order_and_isolates_a_bad_item(client: TestClient, png: bytes) -> None:
    files = [("files", (f"{i}.png", png)) for i in range(5)]
    files[2] = ("files", ("bad.png", png[: len(png) // 2]))
    response = client.post("/v1/predict/batch?top_k=2", files=files)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["index"] for item in items] == [0, 1, 2, 3, 4]
    assert items[2]["prediction"] is None
    assert items[2]["error"]["status"] == 400
    assert items[2]["filename"] == "bad.png"
    good = [item for i, item in enumerate(items) if i != 2]
    assert all(item["error"] is None and len(item["prediction"]["species"]) == 2 for item in good)
    # the same image gives the same answer wherever it sits in the batch (each its own id)
    assert len({str(_answer(item["prediction"])) for item in good}) == 1
    assert len({item["prediction"]["id"] for item in good}) == 4


def test_the_load_generators_encoded_bodies_are_read_as_one_item_per_image(
    client: TestClient, png: bytes
) -> None:
    # the serving benchmark pre-encodes its bodies by hand: both routes must read them as sent
    [single] = request_bodies([png], 1)
    headers = {"Content-Type": CONTENT_TYPE}
    response = client.post("/v1/predict", content=single, headers=headers)
    assert response.status_code == 200, response.text
    alone = response.json()["species"]
    bodies = request_bodies([png] * 7, 3)  # two bodies of 3; the 7th image is left over
    assert len(bodies) == 2
    response = client.post("/v1/predict/batch", content=bodies[1], headers=headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["index"] for item in items] == [0, 1, 2]
    assert all(_answer(item["prediction"]) == _answer(items[0]["prediction"]) for item in items)
    assert items[0]["prediction"]["species"] == alone


def test_species_lookup(client: TestClient) -> None:
    body = client.get("/v1/species/charizard").json()
    assert body["display_name"] == "Charizard"
    assert body["types"] == ["fire", "flying"]
    assert body["weaknesses"][0] == {"type": "rock", "multiplier": 4.0}
    assert {"type": "ground", "multiplier": 2.0} not in body["weaknesses"]  # ground x2 x0 = 0
    assert client.get("/v1/species/Mr. Mime").json()["name"] == "mr-mime"


def test_unknown_species_and_type_are_404(client: TestClient) -> None:
    for path in ("/v1/species/missingno", "/v1/types/sound", "/v1/types/" + "x" * 60):
        response = client.get(path)
        assert response.status_code in (404, 422), path
        assert "detail" in response.json()
    assert client.get("/v1/species/missingno").status_code == 404
    assert client.get("/v1/types/sound").status_code == 404


def test_type_matchups(client: TestClient) -> None:
    body = client.get("/v1/types/Fire").json()
    assert body["type"] == "fire"
    assert set(body["defense"]["x2"]) == {"rock", "water", "ground"}
    assert body["attack"]["x0.5"] == ["fire"]


def test_model_info(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert body["version"] == "v1"
    assert body["num_classes"] == len(CLASSES)
    assert body["input_size"] == 32
    assert body["metrics"] == {"test/acc_top1": 0.5}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"]["version"] == "v1"


def test_bad_model_leaves_the_process_up_but_not_ready(
    make_settings: MakeSettings, tmp_path: Path, png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(model=str(tmp_path / "no-such-bundle"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "no-such-bundle" in ready.json()["detail"]
        predict = client.post("/v1/predict", files={"file": png})
        assert predict.status_code == 503
        assert "not ready" in predict.json()["detail"]
    assert "no-such-bundle" in caplog.text


def test_int8_variant_is_selectable(make_settings: MakeSettings, png: bytes) -> None:
    with TestClient(create_app(make_settings(variant="int8"))) as client:
        body = client.post("/v1/predict", files={"file": png}).json()
    assert body["model"]["variant"] == "int8"


def test_metrics_exposes_every_family(client: TestClient, png: bytes) -> None:
    client.post("/v1/predict", files={"file": png})
    client.get("/v1/species/nope")
    text = client.get("/metrics").text
    for name in (
        "pokedex_http_requests_total",
        "pokedex_http_request_duration_seconds_bucket",
        "pokedex_inference_duration_seconds_bucket",
        "pokedex_batch_size_images_bucket",
        "pokedex_queue_depth_images",
        "pokedex_prediction_confidence_ratio_bucket",
        "pokedex_predictions_by_species_total",
        "pokedex_predictions_by_type_total",
        "pokedex_model_info",
    ):
        assert name in text, name
    assert 'pokedex_model_info{name="pokedex-test",variant="fp32",version="v1"} 1.0' in text
    # route templates, never raw paths: no label value carries the species asked for
    assert 'route="/v1/species/{name}"' in text
    assert "nope" not in text


def test_prediction_log_has_one_row_per_success_after_shutdown(
    make_settings: MakeSettings, tmp_path: Path, png: bytes
) -> None:
    db = tmp_path / "log.db"
    ok = 0
    with TestClient(create_app(make_settings(prediction_log_url=f"sqlite:///{db}"))) as client:
        for _ in range(5):
            ok += client.post("/v1/predict", files={"file": png}).status_code == 200
        client.post("/v1/predict", files={"file": b"not an image"})  # no row for a failure
        batch = [("files", png), ("files", b"junk"), ("files", png)]
        ok += sum(
            i["error"] is None
            for i in client.post("/v1/predict/batch", files=batch).json()["items"]
        )
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT top1, width, height, embedding_head, image FROM predictions"
        ).fetchall()
    assert ok == 7
    assert len(rows) == ok
    top1, width, height, head, image = rows[0]
    assert top1 in CLASSES
    assert (width, height) == (128, 128)
    assert head.startswith("[")
    assert image is None  # raw images are not logged unless enabled


def test_openapi_documents_the_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/predict/batch", "/v1/species/{name}", "/v1/types/{type_name}"):
        assert path in schema["paths"], path
    assert "/v1/model" in schema["paths"]
    assert "/readyz" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_the_docs_page_loads_nothing_from_outside_the_server(client: TestClient) -> None:
    # no CDN: the interactive docs work offline and behind a firewall (issue 23, item 3)
    html = client.get("/docs").text
    assert not re.findall(r"https?://", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit(".", 1)[-1] for a in assets} >= {"js", "png"}
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset  # the real script, style sheet or icon
    assert client.get("/redoc").status_code == 404  # ReDoc's page fetches its logo from a CDN


def test_cors_is_off_by_default_and_follows_settings(
    client: TestClient, make_settings: MakeSettings
) -> None:
    origin = {"Origin": "https://ui.example"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    with TestClient(create_app(make_settings(cors_origins=["https://ui.example"]))) as allowed:
        headers = allowed.get("/healthz", headers=origin).headers
    assert headers["access-control-allow-origin"] == "https://ui.example"


def test_an_app_that_was_never_started_answers_503(make_settings: MakeSettings) -> None:
    client = TestClient(create_app(make_settings()))  # no `with`: the lifespan never runs
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
