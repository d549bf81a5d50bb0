"""Admin reload: absent without a token, bearer auth, REF allowlist, atomic swap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pokedex.serving.app import create_app
from tests.serving.conftest import MakeSettings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin(make_settings: MakeSettings) -> Iterator[TestClient]:
    """A client of an app with the admin route enabled."""
    with TestClient(create_app(make_settings(admin_token=TOKEN))) as c:
        yield c


def test_route_does_not_exist_without_a_token(client: TestClient, model_root: Path) -> None:
    response = client.post("/v1/admin/reload", json={"model": str(model_root / "v2")}, headers=AUTH)
    assert response.status_code == 404
    assert "/v1/admin/reload" not in client.get("/openapi.json").text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_wrong_or_missing_token_is_401(
    admin: TestClient, model_root: Path, headers: dict[str, str]
) -> None:
    response = admin.post(
        "/v1/admin/reload", json={"model": str(model_root / "v2")}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert admin.get("/v1/model").json()["version"] == "v1"


def test_token_in_the_query_string_is_not_accepted(admin: TestClient, model_root: Path) -> None:
    url = f"/v1/admin/reload?token={TOKEN}&access_token={TOKEN}"
    assert admin.post(url, json={"model": str(model_root / "v2")}).status_code == 401


def test_swap_serves_the_new_model(admin: TestClient, model_root: Path, png: bytes) -> None:
    response = admin.post("/v1/admin/reload", json={"model": str(model_root / "v2")}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["previous"]["version"] == "v1"
    assert response.json()["current"]["version"] == "v2"
    assert admin.get("/v1/model").json()["version"] == "v2"
    assert admin.post("/v1/predict", files={"file": png}).json()["model"]["version"] == "v2"
    assert 'version="v2"' in admin.get("/metrics").text


@pytest.mark.parametrize(
    "ref",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://example.com/bundle",
        "file:///etc/passwd",
        "gs://bucket/model",
        "../../etc",
        "{root}/../outside",
        "{root}/v1/../../etc",
        "{root}\\..\\x",
        "/etc",
        "{root}%2f..%2f..",
        "models:/../../x",
        "models:/pokedex@prod#frag",
        "models:/pokedex@prod;rm",
        "models:/",
    ],
)
def test_refs_outside_the_allowlist_are_400(admin: TestClient, model_root: Path, ref: str) -> None:
    response = admin.post(
        "/v1/admin/reload", json={"model": ref.format(root=model_root)}, headers=AUTH
    )
    assert response.status_code == 400, response.text
    assert admin.get("/v1/model").json()["version"] == "v1"


def test_a_model_that_fails_to_load_keeps_the_old_one(
    admin: TestClient, model_root: Path, png: bytes
) -> None:
    broken = model_root / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "bundle.json").write_text("{not json")
    (broken / "classes.json").write_text("[]")
    response = admin.post("/v1/admin/reload", json={"model": str(broken)}, headers=AUTH)
    assert response.status_code == 422
    assert admin.get("/readyz").status_code == 200
    assert admin.post("/v1/predict", files={"file": png}).json()["model"]["version"] == "v1"
    assert 'pokedex_model_reloads_total{result="failed"} 1.0' in admin.get("/metrics").text


def test_extra_fields_in_the_body_are_422(admin: TestClient, model_root: Path) -> None:
    body = {"model": str(model_root / "v2"), "force": True}
    assert admin.post("/v1/admin/reload", json=body, headers=AUTH).status_code == 422


def test_reload_makes_an_unready_server_ready(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    settings = make_settings(admin_token=TOKEN, model=str(tmp_path / "missing"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
        body = {"model": str(model_root / "v1")}
        assert client.post("/v1/admin/reload", json=body, headers=AUTH).status_code == 200
        assert client.get("/readyz").status_code == 200
