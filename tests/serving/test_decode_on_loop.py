"""POKEDEX_PREPROCESS_THREADS=0: images are decoded on the event loop, with the same answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pokedex.serving.app import create_app
from tests.serving.conftest import MakeSettings


def test_decoding_on_the_loop_gives_the_same_answers_and_per_item_errors(
    make_settings: MakeSettings, png: bytes, images: dict[str, bytes]
) -> None:
    files = [("files", (f"{kind}.{kind}", data)) for kind, data in images.items()]
    files.insert(1, ("files", ("bad.png", png[: len(png) // 2])))
    answers = []
    for threads in (1, 0):
        with TestClient(create_app(make_settings(preprocess_threads=threads))) as client:
            assert (client.app.state.serving.preprocess_pool is None) == (threads == 0)
            single = client.post("/v1/predict", files={"file": ("a.png", png)})
            assert single.status_code == 200, single.text
            batch = client.post("/v1/predict/batch", files=files)
            assert batch.status_code == 200, batch.text
            items = batch.json()["items"]
            assert items[1]["error"]["status"] == 400
            assert items[1]["prediction"] is None
            answers.append(
                (
                    single.json()["species"],
                    [item["prediction"] and item["prediction"]["species"] for item in items],
                )
            )
    assert answers[0] == answers[1]
