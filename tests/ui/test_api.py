"""The UI's HTTP client against a fake API on 127.0.0.1: typed answers, readable errors."""

from __future__ import annotations

import pytest

from pokedex.benchmarks.localserver import free_port
from pokedex.ui.api import ApiError, PokedexApi
from tests.ui.conftest import PIKACHU, FakeApi


def test_typed_answers(client: PokedexApi, fake_api: FakeApi) -> None:
    answer = client.predict(b"\x89PNG...", "pika.png", top_k=5)
    assert [s.name for s in answer.species] == [n for n, _ in PIKACHU]
    assert answer.types == ["electric"]
    assert client.species("charizard").weaknesses[0].model_dump() == {
        "type": "rock",
        "multiplier": 4.0,
    }
    assert len(client.search("").items) == 9
    assert client.model_info().background == (255, 255, 255)
    assert client.type_matchups("fire").attack["x2"] == ["bug", "steel", "grass", "ice"]
    method, path, query = fake_api.requests[0]
    assert (method, path, query) == ("POST", "/v1/predict", {"top_k": ["5"]})
    assert b'name="file"; filename="pika.png"' in fake_api.bodies[0]


def test_names_are_escaped_in_paths(client: PokedexApi, fake_api: FakeApi) -> None:
    with pytest.raises(ApiError):
        client.species("../model")
    assert fake_api.requests[-1][1] == "/v1/species/..%2Fmodel"


def test_missing_embedding_map_is_none_not_an_error(client: PokedexApi, fake_api: FakeApi) -> None:
    assert client.embeddings() is not None
    fake_api.set("GET", "/v1/model/embeddings", {"detail": "no map"}, status=404)
    assert client.embeddings() is None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"detail": "the file could not be read as an image"}, "The file could not be read"),
        (413, {"detail": "the image is too large: 9x9"}, "The image is too large: 9x9"),
        (415, {"detail": "GIF images are not supported"}, "GIF images are not supported"),
        (
            422,
            {"detail": [{"loc": ["query", "top_k"], "msg": "too big"}]},
            "refused the request (query.top_k: too big)",
        ),
        (503, {"detail": "model not ready"}, "try again in a moment (model not ready)"),
        (504, {"detail": "timed out"}, "took too long: try again in a moment (timed out)"),
        (502, b"<html>Bad Gateway</html>", "an error: try again (<html>Bad Gateway</html>)"),
        (500, b"", "failed: try again, and tell whoever runs it if it keeps failing"),
    ],
)
def test_http_errors_become_sentences_without_status_codes(
    client: PokedexApi, fake_api: FakeApi, status: int, body: object, expected: str
) -> None:
    fake_api.set("POST", "/v1/predict", body, status=status)
    with pytest.raises(ApiError, match=None) as caught:
        client.predict(b"x", "x.png")
    assert expected in str(caught.value)
    assert str(status) not in str(caught.value)  # HTTP status codes are not for people
    assert caught.value.status == status
    assert fake_api.calls("POST", "/v1/predict") == 1  # an answered request is never repeated


def test_long_details_are_cut(client: PokedexApi, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/model", {"detail": "x" * 5000}, status=503)
    with pytest.raises(ApiError) as caught:
        client.model_info()
    assert len(str(caught.value)) < 400


def test_unreachable_api_names_the_url_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiError, match=r"Cannot reach the Pokédex API at http://127\.0\.0\.1:\d+"):
        PokedexApi(url, timeout_s=2).model_info()


def test_timeout_says_so(fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/model", {}, delay_s=1.5)
    with pytest.raises(ApiError, match=r"did not answer within 0\.5 s"):
        PokedexApi(fake_api.url, timeout_s=0.5).model_info()


def test_an_answer_in_another_shape_is_an_error(client: PokedexApi, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/model", {"name": "something else"})
    with pytest.raises(ApiError, match="same version"):
        client.model_info()
    fake_api.set("GET", "/v1/model", b"not json")
    with pytest.raises(ApiError, match="same version"):
        client.model_info()
