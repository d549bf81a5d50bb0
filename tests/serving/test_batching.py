"""Micro-batching: gathering, load shedding, timeouts, draining, and batches on a real server."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from pokedex.benchmarks.localserver import free_port
from pokedex.core.predictor import Outputs
from pokedex.serving.app import create_app
from pokedex.serving.batching import BatcherClosedError, MicroBatcher, QueueFullError
from pokedex.serving.prometheus import Metrics
from tests.serving.conftest import MakeSettings


class FakeRunner:
    """Records batch sizes; answers each image with its own first pixel as the probability."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []

    def run(self, inputs: np.ndarray) -> Outputs:
        time.sleep(self.delay)
        self.batches.append(len(inputs))
        n = len(inputs)
        return Outputs(inputs[:, 0, 0, :2], np.zeros((n, 18)), np.zeros((n, 4)), np.zeros(n))


def _image(value: float) -> np.ndarray:
    return np.full((3, 2, 2), value, dtype=np.float32)


def test_concurrent_submits_are_gathered_in_order() -> None:
    async def main() -> tuple[list[int], list[float]]:
        runner = FakeRunner()
        batcher = MicroBatcher(Metrics(), max_batch_size=8, max_wait_ms=50)
        batcher.start()
        futures = [f for i in range(20) for f in batcher.submit(runner, [_image(i)])]
        rows = await asyncio.gather(*futures)
        await batcher.stop()
        return runner.batches, [float(r.probabilities[0]) for r in rows]

    batches, values = asyncio.run(main())
    assert batches == [8, 8, 4]
    assert values == [float(i) for i in range(20)]


def test_a_lone_request_does_not_wait_but_an_announced_one_is_awaited() -> None:
    async def main() -> tuple[float, list[int]]:
        runner = FakeRunner()
        batcher = MicroBatcher(Metrics(), max_batch_size=8, max_wait_ms=5000)
        batcher.start()
        start = time.perf_counter()
        await asyncio.gather(*batcher.submit(runner, [_image(0)]))
        lone = time.perf_counter() - start
        with batcher.incoming(1):  # a second request is still decoding its image
            first = batcher.submit(runner, [_image(1)])
            await asyncio.sleep(0.05)
            second = batcher.submit(runner, [_image(2)])
        await asyncio.gather(*first, *second)
        await batcher.stop()
        return lone, runner.batches

    lone, batches = asyncio.run(main())
    assert lone < 2.5  # far below max_wait_ms
    assert batches == [1, 2]


def test_two_models_never_share_a_batch() -> None:
    async def main() -> tuple[list[int], list[int]]:
        a, b = FakeRunner(), FakeRunner()
        batcher = MicroBatcher(Metrics(), max_batch_size=8, max_wait_ms=20)
        batcher.start()
        futures = []
        for i in range(6):
            futures += batcher.submit(a if i % 3 else b, [_image(i)])
        await asyncio.gather(*futures)
        await batcher.stop()
        return a.batches, b.batches

    a_batches, b_batches = asyncio.run(main())
    assert sum(a_batches) == 4
    assert sum(b_batches) == 2


def test_full_queue_refuses_all_or_nothing_and_closed_refuses() -> None:
    async def main() -> None:
        batcher = MicroBatcher(Metrics(), max_queue=3)  # not started: nothing drains
        batcher.submit(FakeRunner(), [_image(0), _image(1)])
        with pytest.raises(QueueFullError):
            batcher.submit(FakeRunner(), [_image(2), _image(3)])
        assert batcher.depth == 2
        batcher._closing = True
        with pytest.raises(BatcherClosedError):
            batcher.submit(FakeRunner(), [_image(4)])

    asyncio.run(main())


def test_admission_counts_images_still_decoding() -> None:
    async def main() -> None:
        batcher = MicroBatcher(Metrics(), max_queue=3)  # not started: nothing drains
        batcher.submit(FakeRunner(), [_image(0)])
        # 1 queued + 2 decoding fill it: a third image is refused before it is decoded
        with batcher.incoming(2), pytest.raises(QueueFullError), batcher.incoming(1):
            pass
        with batcher.incoming(2):  # admitted again once the others are done
            pass

    asyncio.run(main())


def test_stop_finishes_queued_work() -> None:
    async def main() -> list[int]:
        runner = FakeRunner(delay=0.05)
        batcher = MicroBatcher(Metrics(), max_batch_size=2, max_wait_ms=1)
        batcher.start()
        futures = [f for i in range(5) for f in batcher.submit(runner, [_image(i)])]
        await batcher.stop()
        assert all(f.done() and not f.cancelled() for f in futures)
        return runner.batches

    assert sum(asyncio.run(main())) == 5


def test_overload_is_503_with_retry_after(make_settings: MakeSettings, png: bytes) -> None:
    with TestClient(create_app(make_settings(max_queue=2))) as client:
        response = client.post("/v1/predict/batch", files=[("files", png)] * 3)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_slow_model_is_504_and_the_server_recovers(make_settings: MakeSettings, png: bytes) -> None:
    with TestClient(create_app(make_settings(request_timeout_s=1.0))) as client:
        predictor = client.app.state.serving.model.predictor  # type: ignore[attr-defined]
        fast, release = predictor.run, threading.Event()

        def stuck(inputs: np.ndarray) -> Outputs:
            release.wait(30)  # a model run that hangs until the test lets it go
            return fast(inputs)

        predictor.run = stuck
        response = client.post("/v1/predict", files={"file": png})
        assert response.status_code == 504
        assert "detail" in response.json()
        predictor.run = fast
        release.set()  # the stuck batch finishes; the inference thread is free again
        assert client.post("/v1/predict", files={"file": png}).status_code == 200


@pytest.fixture(params=[2, 0], ids=["decode-threads", "decode-on-loop"])
def live_server(make_settings: MakeSettings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in a thread, decoding in a pool of two threads or on
    its event loop; yields its base URL."""
    app = create_app(make_settings(max_wait_ms=50, preprocess_threads=request.param))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_real_server_batches_concurrent_requests(live_server: str, png: bytes) -> None:
    def one(_: int) -> int:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            return http.post("/v1/predict", files={"file": ("a.png", png)}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(16)))
    assert statuses == [200] * 16
    metrics = httpx.get(f"{live_server}/metrics").text
    count = float(re.search(r"^pokedex_batch_size_images_count (\S+)$", metrics, re.M)[1])
    singles = float(
        re.search(r'^pokedex_batch_size_images_bucket\{le="1.0"\} (\S+)$', metrics, re.M)[1]
    )
    assert count < 16  # fewer model runs than requests
    assert count - singles >= 1  # at least one run held more than one image
