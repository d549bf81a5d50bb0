"""The UI's HTTP client against a fake API on 127.0.0.1: typed answers, readable errors."""

from __future__ import annotations

import json

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


PREDICTION = "0193a4e2-7c1d-7abc-8def-0123456789ab"
RECORDED = {
    "prediction_id": PREDICTION,
    "verdict": "species",
    "species": "charmander",
    "agrees": False,
    "received_at": "2026-12-05T00:00:00Z",
}


def test_predict_keeps_the_picture_only_when_asked(client: PokedexApi, fake_api: FakeApi) -> None:
    client.predict(b"x", "x.png")
    client.predict(b"x", "x.png", keep_image=True)
    assert [q for _, p, q in fake_api.requests if p == "/v1/predict"] == [
        {"top_k": ["5"]},
        {"top_k": ["5"], "keep_image": ["true"]},
    ]


def test_a_verdict_is_sent_as_json_and_read_back(client: PokedexApi, fake_api: FakeApi) -> None:
    fake_api.set("POST", "/v1/feedback", RECORDED, status=201)
    recorded = client.feedback(PREDICTION, "charmander")
    assert (recorded.verdict, recorded.species, recorded.agrees) == ("species", "charmander", False)
    [body] = fake_api.sent("POST", "/v1/feedback")
    assert json.loads(body) == {"prediction_id": PREDICTION, "verdict": "charmander"}


def test_a_verdict_on_no_prediction_id_is_never_sent(client: PokedexApi, fake_api: FakeApi) -> None:
    with pytest.raises(ApiError, match="is not a prediction id"):
        client.feedback("req-123", "correct")
    assert fake_api.calls("POST", "/v1/feedback") == 0


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "7", "Too many verdicts from here just now: try again in 7 s."),
        (429, None, "Too many verdicts from here just now: try again in a minute."),
        (409, None, "This answer already has a verdict: one per answer."),
        (409, "1", "The Pokédex is still recording this answer: try again in 1 s."),
        (422, None, "The Pokédex does not know that species: pick one from the list."),
        (404, None, "The Pokédex has no record of this answer"),
        (503, "30", "The Pokédex is busy or still starting: try again in a moment"),
    ],
)
def test_a_refused_verdict_says_why_in_words(
    client: PokedexApi, fake_api: FakeApi, status: int, retry_after: str | None, expected: str
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    fake_api.set("POST", "/v1/feedback", {"detail": "the API's words"}, status, headers=headers)
    with pytest.raises(ApiError) as caught:
        client.feedback(PREDICTION, "mewtwo")
    assert expected in str(caught.value)
    assert str(status) not in str(caught.value)
    assert caught.value.status == status
    assert caught.value.retry_after_s == (float(retry_after) if retry_after else None)
    assert fake_api.calls("POST", "/v1/feedback") == 1  # never repeated


def test_feedback_accuracy_of_a_window(client: PokedexApi, fake_api: FakeApi) -> None:
    answer = {
        "window": "7d",
        "verdicts": 4,
        "agreeing": 3,
        "accuracy": 0.75,
        "by_verdict": {"correct": 3, "species": 1, "not_pokemon": 0},
    }
    fake_api.set("GET", "/v1/monitoring/feedback", answer)
    assert client.feedback_accuracy("7d").accuracy == 0.75
    assert client.feedback_accuracy().by_verdict["species"] == 1
    queries = [q for _, p, q in fake_api.requests if p == "/v1/monitoring/feedback"]
    assert queries == [{"window": ["7d"]}, {}]
