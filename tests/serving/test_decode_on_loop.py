"""Where uploads are decoded: small ones on the event loop, large ones in the decoding threads
(POKEDEX_INLINE_DECODE_BYTES), all on the loop with POKEDEX_PREPROCESS_THREADS=0; the answers
are the same either way."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pokedex.serving import pipeline
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


def test_small_uploads_are_decoded_on_the_loop_and_large_ones_in_the_pool(
    make_settings: MakeSettings, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = io.BytesIO()  # noise does not compress: a 400 px PNG of it is about 480 KB
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "PNG")
    big = buf.getvalue()
    assert len(png) < 128 * 1024 < len(big)
    threads: list[tuple[int, str]] = []
    real = pipeline._prepare

    def spy(data: bytes, *args: Any) -> Any:
        threads.append((len(data), threading.current_thread().name))
        return real(data, *args)

    monkeypatch.setattr(pipeline, "_prepare", spy)
    for limit, big_in_pool, small_in_pool in ((128 * 1024, True, False), (0, True, True)):
        threads.clear()
        settings = make_settings(preprocess_threads=1, inline_decode_bytes=limit)
        with TestClient(create_app(settings)) as client:
            for data in (png, big):
                response = client.post("/v1/predict", files={"file": ("a.png", data)})
                assert response.status_code == 200, response.text
        in_pool = {size: name.startswith("pokedex-decode") for size, name in threads}
        assert in_pool == {len(png): small_in_pool, len(big): big_in_pool}
