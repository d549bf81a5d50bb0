"""Dynamic micro-batching: concurrent requests are gathered into one model run.

An asyncio queue feeds one worker task. The worker takes the first waiting image, then keeps
gathering until it holds ``max_batch_size`` images or ``max_wait_ms`` has passed, and runs the
model on a single inference thread so the event loop never blocks. While a batch runs, new
requests queue up, so batches grow with load. The worker waits for stragglers only while
other requests are still being decoded (``incoming``): a lone request runs at once instead of
paying ``max_wait_ms``. The queue is bounded: a full queue refuses new work at once (the
caller answers 503) instead of letting latency grow without limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pokedex.core.predictor import Outputs
from pokedex.serving.prometheus import Metrics

log = logging.getLogger(__name__)


class Runner(Protocol):
    """Anything that maps a batch ``(N, 3, H, W)`` to model outputs (an OnnxPredictor)."""

    def run(self, inputs: np.ndarray) -> Outputs:
        """Outputs for a batch."""
        ...


class QueueFullError(Exception):
    """The batcher holds ``max_queue`` images already: shed load."""


class BatcherClosedError(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass(frozen=True)
class Row:
    """Model outputs for one image."""

    probabilities: np.ndarray  # (C,)
    type_probabilities: np.ndarray  # (18,)
    features: np.ndarray  # (D,)
    energy: float
    cosine: float = 0.0  # largest cosine to the species centroids (0 when the bundle has none)


@dataclass
class _Item:
    runner: Runner
    x: np.ndarray  # (3, H, W)
    future: asyncio.Future[Row] = field(repr=False)


_STOP: Any = object()


class MicroBatcher:
    """Gathers single images into batches for one inference thread."""

    def __init__(
        self,
        metrics: Metrics,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
    ) -> None:
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._carry: _Item | None = None  # an item for another model, held for the next batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pokedex-infer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._incoming = 0  # images announced by requests still decoding them

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._work(), name="pokedex-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish every queued image, then stop the worker and its thread."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(_STOP)
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        """Images waiting for the model."""
        return self._queue.qsize()

    @contextmanager
    def incoming(self, n: int) -> Iterator[None]:
        """Admit ``n`` images about to be decoded, so the worker waits for them to join a batch.

        Admission control: QueueFullError when the images decoding or queued would pass
        ``max_queue``, so an overloaded server refuses at once instead of after decoding.
        """
        if self._queue.qsize() + self._incoming + n > self.max_queue:
            raise QueueFullError(f"{self._queue.qsize() + self._incoming} images are in flight")
        self._incoming += n
        try:
            yield
        finally:
            self._incoming -= n

    def submit(self, runner: Runner, images: list[np.ndarray]) -> list[asyncio.Future[Row]]:
        """Queue images ``(3, H, W)`` for ``runner``; all or none (QueueFullError)."""
        if self._closing:
            raise BatcherClosedError("the server is shutting down")
        if self._queue.qsize() + len(images) > self.max_queue:
            raise QueueFullError(f"{self._queue.qsize()} images are already waiting")
        loop = asyncio.get_running_loop()
        futures = []
        for x in images:
            item = _Item(runner, x, loop.create_future())
            self._queue.put_nowait(item)
            futures.append(item.future)
        self.metrics.queue_depth.set(self._queue.qsize())
        return futures

    async def _work(self) -> None:
        stopping = False
        while not stopping or self._carry is not None:
            batch, stopping = await self._gather(stopping)
            if batch:
                await self._run(batch)

    async def _gather(self, stopping: bool) -> tuple[list[_Item], bool]:
        """The next batch: up to max_batch_size items for one runner, within max_wait."""
        if self._carry is not None:
            first, self._carry = self._carry, None
        elif stopping:
            return [], True
        else:
            first = await self._queue.get()
            if first is _STOP:
                return [], True
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch_size and not stopping:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._incoming == 0:
                    break  # out of time, or nothing else is on its way: run what we have
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if item is _STOP:
                stopping = True
            elif item.runner is not first.runner:
                # a model swap happened: never mix two models (or input sizes) in one batch
                self._carry = item
                break
            else:
                batch.append(item)
        self.metrics.queue_depth.set(self._queue.qsize())
        return batch, stopping

    async def _run(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # timed-out callers left
        if not live:
            return
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            inputs = np.stack([item.x for item in live])  # (N, 3, H, W)
            out = await loop.run_in_executor(self._executor, live[0].runner.run, inputs)
        except Exception as exc:
            # fail this batch's requests, never the worker: the next batch must still run
            log.exception("model run failed on a batch of %d", len(live))
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self.metrics.inference_latency.observe(time.perf_counter() - start)
        self.metrics.batch_size.observe(len(live))
        for i, item in enumerate(live):
            if not item.future.done():
                item.future.set_result(
                    Row(
                        probabilities=out.probabilities[i],
                        type_probabilities=out.type_probabilities[i],
                        features=out.features[i],
                        energy=float(out.energy[i]) if len(out.energy) else 0.0,
                        cosine=float(out.cosine[i]) if len(out.cosine) else 0.0,
                    )
                )
