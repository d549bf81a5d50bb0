"""Closed-loop HTTP load: N concurrent clients post images for a fixed time, nothing else.

Each client sends its next request as soon as the previous answer arrives (so N is the number
of requests in flight). Only answers that complete inside the measured window count: the
warm-up before it and the stragglers after it are excluded. The server's resident memory is
sampled while it runs.

The client shares the machine's cores with the server, so it must be cheap: aiohttp over
keep-alive connections, and each image's multipart body encoded once, before the clock starts
(httpx cost ~8 ms of CPU per request here, aiohttp with pre-encoded bodies ~0.5 ms). The CPU
the client used is reported with each level.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import numpy as np
import psutil

MB = 1024 * 1024
_RSS_EVERY_S = 0.05
_ERROR_CHARS = 200
_BOUNDARY = "pokedex-loadgen-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={_BOUNDARY}"


def multipart_body(
    images: bytes | Sequence[bytes],
    field: str = "file",
    filename: str = "image.png",
    mime: str = "image/png",
) -> bytes:
    """A multipart/form-data body with one ``field`` part per image (one image: one part)."""
    parts = [images] if isinstance(images, bytes) else list(images)
    head = (
        f"--{_BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {mime}\r\n\r\n"
    ).encode()
    return b"".join(head + image + b"\r\n" for image in parts) + f"--{_BOUNDARY}--\r\n".encode()


def request_bodies(images: list[bytes], per_request: int) -> list[bytes]:
    """Pre-encoded bodies: one image each (field ``file``), or ``per_request`` images each
    (field ``files``, the batch route), taking the images in order and wrapping around."""
    if per_request == 1:
        return [multipart_body(image) for image in images]
    n = max(1, len(images) // per_request)
    return [
        multipart_body(
            [images[(k * per_request + j) % len(images)] for j in range(per_request)], field="files"
        )
        for k in range(n)
    ]


@dataclass
class LevelResult:
    """What one concurrency level measured."""

    concurrency: int
    window_s: float
    latencies_ms: list[float] = field(repr=False)  # successful answers inside the window
    errors: int = 0  # failed answers inside the window (non-200 or transport error)
    first_error: str | None = None
    peak_rss_mb: float = 0.0  # the server process, over warm-up and window
    client_cpu: float = 0.0  # cores the load generator itself kept busy (it shares them)
    server_cpu_s: float = 0.0  # CPU seconds the server process used inside the window
    images_per_request: int = 1
    round_rps: list[float] = field(default_factory=list)  # req/s of each round pooled into this

    @property
    def images_per_s(self) -> float:
        """Images answered per second of the window (requests/s times images per request)."""
        return self.requests_per_s * self.images_per_request

    @property
    def server_cpu_ms(self) -> float | None:
        """Server CPU milliseconds per successful request: what each costs the machine."""
        return 1000 * self.server_cpu_s / len(self.latencies_ms) if self.latencies_ms else None

    @property
    def requests_per_s(self) -> float:
        """Successful answers per second of the window."""
        return len(self.latencies_ms) / self.window_s

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile of the successful answers; None when there were none."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no raw samples)."""
        d = asdict(self)
        d.pop("latencies_ms")
        d.update(
            ok=len(self.latencies_ms),
            requests_per_s=self.requests_per_s,
            images_per_s=self.images_per_s,
            server_cpu_ms=self.server_cpu_ms,
            **{f"p{q}_ms": self.percentile_ms(q) for q in (50, 95, 99)},
        )
        return d


def pool_levels(levels: list[LevelResult]) -> list[LevelResult]:
    """One level per (clients, images per request), in first-seen order, pooling the rounds
    that measured it: answers and windows added up (so req/s is over all of them), latency
    percentiles over every answer, peak memory the highest; each round's req/s kept."""
    groups: dict[tuple[int, int], list[LevelResult]] = {}
    for lv in levels:
        groups.setdefault((lv.concurrency, lv.images_per_request), []).append(lv)
    pooled = []
    for (concurrency, per_request), group in groups.items():
        pooled.append(
            LevelResult(
                concurrency,
                sum(lv.window_s for lv in group),
                [ms for lv in group for ms in lv.latencies_ms],
                errors=sum(lv.errors for lv in group),
                first_error=next((lv.first_error for lv in group if lv.first_error), None),
                peak_rss_mb=max(lv.peak_rss_mb for lv in group),
                client_cpu=float(np.mean([lv.client_cpu for lv in group])),
                server_cpu_s=sum(lv.server_cpu_s for lv in group),
                images_per_request=per_request,
                round_rps=[rps for lv in group for rps in (lv.round_rps or [lv.requests_per_s])],
            )
        )
    return pooled


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (0 once it is gone)."""
    try:
        proc = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0.0


def process_rss(pid: int) -> int:
    """Resident bytes of a process and its children (0 once it is gone)."""
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


def run_level(
    url: str,
    images: list[bytes],
    concurrency: int,
    window_s: float,
    warmup_s: float,
    pid: int,
    per_request: int = 1,
) -> LevelResult:
    """Drive ``url`` with ``concurrency`` clients, each request carrying ``per_request`` images
    (1: multipart field ``file``; more: field ``files``, the batch route); see module doc."""
    bodies = request_bodies(images, per_request)
    result = LevelResult(concurrency, window_s, [], images_per_request=per_request)
    return asyncio.run(_level(url, bodies, result, warmup_s, pid))


async def _level(
    url: str, bodies: list[bytes], result: LevelResult, warmup_s: float, pid: int
) -> LevelResult:
    concurrency = result.concurrency
    start = time.perf_counter()
    begin, end = start + warmup_s, start + warmup_s + result.window_s
    headers = {"Content-Type": CONTENT_TYPE}
    cpu_before = time.process_time()
    peak = [process_rss(pid)]
    done = asyncio.Event()

    async def sample_rss() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process_rss(pid))
            await asyncio.sleep(_RSS_EVERY_S)

    async def client(http: aiohttp.ClientSession, k: int) -> None:
        # client k sends images k, k + 1, k + 2...: each client every image in turn, so a slow
        # one (a photo) keeps its share of the mix. Stepping by N instead pinned each client to
        # the images N apart: with 32 clients and 16 images, the two on the photo sent 1.5 % of
        # the requests, not 6.2 %, and the peak read 30 % above what the mix sustains
        i = k
        while time.perf_counter() < end:
            body = bodies[i % len(bodies)]
            i += 1
            sent = time.perf_counter()
            error = None
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    text = await response.read()
                    if response.status != 200:
                        detail = text[:_ERROR_CHARS].decode(errors="replace")
                        error = f"HTTP {response.status}: {detail}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            answered = time.perf_counter()
            if not begin <= answered <= end:
                continue
            if error is None:
                result.latencies_ms.append(1000 * (answered - sent))
            else:
                result.errors += 1
                result.first_error = result.first_error or error

    async def server_cpu() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        before = process_cpu_s(pid)
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        result.server_cpu_s = process_cpu_s(pid) - before

    sampler = asyncio.create_task(sample_rss())
    cpu = asyncio.create_task(server_cpu())
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(client(http, k) for k in range(concurrency)))
    done.set()
    await sampler
    await cpu
    result.peak_rss_mb = peak[0] / MB
    result.client_cpu = (time.process_time() - cpu_before) / (time.perf_counter() - start)
    return result
