"""`pokedex benchmark serving`: our API against a naive server and the model's own ceiling.

In one run, on 127.0.0.1 and the same bundle:
- baseline: FastAPI + eager PyTorch fp32, one image per request (:mod:`.naive_server`);
- LitServe: the same preprocessing and predictor as ours inside a ``LitAPI`` with LitServe's
            batching (:mod:`.litserve_server`), when litserve is installed (the bench extra);
- ours:     `pokedex serve` (ONNX Runtime or OpenVINO, as the bundle chose; dynamic
            micro-batching), as deployed;
- ceiling:  the served ONNX model at batch 32 in this process, with no HTTP at all.
Each server runs alone as a subprocess and is driven by the same test images at each
concurrency level for a fixed time (:mod:`.loadgen`). Targets: ours ≥ 3x the baseline's peak
throughput and ≥ 0.6 of the ceiling, with no errors, one image per request. Ours is then also
driven through its batch route, ``BATCH`` images per request (clients that batch: what the
server does once the per-request HTTP cost is shared). The tables: :mod:`.serving_report`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from pokedex.benchmarks.loadgen import MB, LevelResult, pool_levels, process_rss, run_level
from pokedex.benchmarks.localserver import free_port, server_process
from pokedex.core.bundle import Bundle
from pokedex.core.predictor import (
    VARIANTS,
    OnnxPredictor,
    default_runtime,
    default_variant,
)
from pokedex.core.preprocess import canvases_to_input
from pokedex.errors import PokedexError
from pokedex.jobs.export import sample_canvases, synthetic_canvases

log = logging.getLogger(__name__)

CONCURRENCY = (1, 8, 32, 64)
BATCH_CONCURRENCY = (1, 4)  # clients each sending BATCH images per request
BATCH = 32  # the ceiling's batch size (the API's default max batch)
MIN_SPEEDUP = 3.0  # ours / baseline, peak req/s
MIN_OF_CEILING = 0.6  # ours peak req/s / ceiling img/s
PROBE_IMAGES = 16  # images whose top-1 both servers must agree on (same model)


@dataclass
class ServerRun:
    """One server under load: start-up, answers and one result per concurrency level."""

    name: str
    description: str
    ready_s: float = 0.0  # spawn to the first 200 on its readiness route
    idle_rss_mb: float = 0.0  # once ready, before any load
    top1: list[str] = field(default_factory=list)  # answers to the probe images
    levels: list[LevelResult] = field(default_factory=list)

    @property
    def peak_rps(self) -> float:
        """The best requests/s over the levels."""
        return max((lv.requests_per_s for lv in self.levels), default=0.0)

    @property
    def peak_images_per_s(self) -> float:
        """The best images/s over the levels."""
        return max((lv.images_per_s for lv in self.levels), default=0.0)

    @property
    def errors(self) -> int:
        """Failed answers over every level."""
        return sum(lv.errors for lv in self.levels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "description": self.description,
            "ready_s": self.ready_s,
            "idle_rss_mb": self.idle_rss_mb,
            "peak_requests_per_s": self.peak_rps,
            "peak_images_per_s": self.peak_images_per_s,
            "errors": self.errors,
            "levels": [lv.to_dict() for lv in self.levels],
        }


@dataclass
class ServingResult:
    """The whole benchmark: both servers, the ceiling and the verdict."""

    model: str
    variant: str
    images: str  # where the request images came from
    window_s: float
    baseline: ServerRun
    ours: ServerRun
    ceiling: float  # img/s of the served model at batch BATCH, no HTTP
    batched: ServerRun | None = None  # ours through the batch route, BATCH images per request
    litserve: ServerRun | None = None  # LitServe over the same predictor (None: not installed)
    scaled: list[ServerRun] = field(default_factory=list)  # ours with other worker counts
    rounds: int = 1  # LitServe and ours were each measured this many times, alternating

    @property
    def best_ours(self) -> ServerRun:
        """Ours at the worker count with the highest peak req/s."""
        return max([self.ours, *self.scaled], key=lambda run: run.peak_rps)

    @property
    def over_litserve(self) -> float | None:
        """Ours (its best worker count) / LitServe, peak req/s."""
        if self.litserve is None or not self.litserve.peak_rps:
            return None
        return self.best_ours.peak_rps / self.litserve.peak_rps

    def p99_at(self, clients: int) -> tuple[float, float] | None:
        """p99 ms of the best ours and of LitServe at ``clients``, when both measured it."""
        if self.litserve is None:
            return None
        found = [
            next((lv.percentile_ms(99) for lv in run.levels if lv.concurrency == clients), None)
            for run in (self.best_ours, self.litserve)
        ]
        ours, lit = found
        return (ours, lit) if ours is not None and lit is not None else None

    @property
    def speedup(self) -> float:
        """Ours / baseline, peak req/s."""
        return self.ours.peak_rps / self.baseline.peak_rps if self.baseline.peak_rps else 0.0

    @property
    def of_ceiling(self) -> float:
        """Ours peak req/s as a share of the ceiling."""
        return self.ours.peak_rps / self.ceiling if self.ceiling else 0.0

    @property
    def batched_of_ceiling(self) -> float | None:
        """Ours through the batch route, peak images/s as a share of the ceiling."""
        if self.batched is None or not self.ceiling:
            return None
        return self.batched.peak_images_per_s / self.ceiling

    @property
    def agreement(self) -> float:
        """Share of probe images on which both servers name the same top-1 species."""
        pairs = list(zip(self.baseline.top1, self.ours.top1, strict=True))
        return sum(a == b for a, b in pairs) / len(pairs) if pairs else 0.0

    @property
    def passed(self) -> bool:
        """Every target met."""
        return (
            self.speedup >= MIN_SPEEDUP
            and self.of_ceiling >= MIN_OF_CEILING
            and not self.ours.errors
        )

    def verdict(self) -> str:
        """One PASS/FAIL line with each figure against its target."""
        return (
            f"{'PASS' if self.passed else 'FAIL'}: ours/baseline {self.speedup:.2f}x "
            f"(target ≥ {MIN_SPEEDUP:g}x), ours/ceiling {self.of_ceiling:.2f} "
            f"(target ≥ {MIN_OF_CEILING:g}), errors {self.ours.errors} (target 0)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "model": self.model,
            "variant": self.variant,
            "images": self.images,
            "window_s": self.window_s,
            "ceiling_images_per_s": self.ceiling,
            "speedup": self.speedup,
            "of_ceiling": self.of_ceiling,
            "batched_of_ceiling": self.batched_of_ceiling,
            "top1_agreement": self.agreement,
            "passed": self.passed,
            "over_litserve": self.over_litserve,
            "rounds": self.rounds,
            "servers": [
                server.to_dict()
                for server in (self.baseline, self.litserve, self.ours, *self.scaled, self.batched)
                if server
            ],
        }


def request_images(
    processed: Path | None, n: int, seed: int = 0
) -> tuple[np.ndarray, list[bytes], str]:
    """``n`` test-split canvases ``(n, S, S, 4)``, the same as PNG files, and their source.

    Synthetic blobs only when no processed data is given.
    """
    if processed is None:
        canvases, source = synthetic_canvases(n, seed), f"{n} synthetic images (no test split)"
    else:
        canvases, _ = sample_canvases(processed, "test", n, seed)
        source = f"{len(canvases)} test-split images of {processed}"
    return canvases, [_png(c) for c in canvases], source


def _png(canvas: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(canvas, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def measure_ceiling(
    bundle: Bundle, variant: str, inputs: np.ndarray, seconds: float, threads: int
) -> float:
    """Images/s of the served model on batches of ``BATCH`` preprocessed inputs, no HTTP."""
    predictor = OnnxPredictor(bundle, variant=variant, threads=threads)
    batch = np.resize(inputs, (BATCH, *inputs.shape[1:]))  # (32, 3, S, S), repeats if few
    predictor.run(batch)  # warm-up: thread pool, allocator
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        predictor.run(batch)
        calls += 1
    return calls * BATCH / (time.perf_counter() - start)


def _top1(url: str, images: list[bytes]) -> list[str]:
    """Top-1 species of each image, one request at a time (before any load)."""
    names = []
    with httpx.Client(timeout=30.0) as http:
        for body in images:
            response = http.post(url, files={"file": ("image.png", body, "image/png")})
            if response.status_code != 200:
                raise PokedexError(f"{url} answered HTTP {response.status_code} to a test image")
            names.append(response.json()["species"][0]["name"])
    return names


def _drive(
    run: ServerRun,
    proc: subprocess.Popen[bytes],
    url: str,
    images: list[bytes],
    levels: tuple[int, ...],
    window_s: float,
    warmup_s: float,
    per_request: int = 1,
) -> None:
    if per_request == 1 and not run.top1:  # first start: its idle memory, answers to probes
        run.idle_rss_mb = process_rss(proc.pid) / MB
        run.top1 = _top1(url, images[:PROBE_IMAGES])
    for concurrency in levels:
        level = run_level(url, images, concurrency, window_s, warmup_s, proc.pid, per_request)
        run.levels.append(level)
        log.info(
            "%s c=%d: %.1f img/s, p99 %s ms, %d errors",
            run.name,
            concurrency,
            level.images_per_s,
            f"{level.percentile_ms(99):.1f}" if level.latencies_ms else "–",
            level.errors,
        )


def run(
    bundle: Bundle,
    processed: Path | None,
    *,
    variant: str = "auto",
    threads: int = 0,
    concurrency: tuple[int, ...] = CONCURRENCY,
    batch_concurrency: tuple[int, ...] = BATCH_CONCURRENCY,
    window_s: float = 10.0,
    warmup_s: float = 2.0,
    images: int = 256,
    seed: int = 0,
    litserve: bool = True,
    workers: tuple[int, ...] = (1,),
    rounds: int = 1,
) -> ServingResult:
    """Measure the ceiling, then the baseline, LitServe (when ``litserve`` and installed) and
    ours, one process at a time; ours again through its batch route at ``batch_concurrency``
    clients (none: skipped). Ours runs with ``workers[0]`` processes, then again with each
    further count in ``workers``. With ``rounds`` above 1, LitServe and ours are started and
    measured that many times, in turn, and each level pools its rounds (on a shared machine
    one 10 s window can land on a busy moment; alternating spreads that over every server).

    ``variant="auto"`` resolves to what `pokedex serve` loads by default for this bundle.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one INFO line per request
    if variant == "auto":
        variant = default_variant(bundle)
    if variant not in VARIANTS:
        raise PokedexError(f"unknown variant {variant!r}: use auto or one of {sorted(VARIANTS)}")
    for name in ("weights.safetensors", VARIANTS[variant]):
        if not (bundle.path / name).is_file():
            raise PokedexError(
                f"{bundle.path} has no {name}: the benchmark needs the PyTorch weights "
                "and the ONNX variant (run `pokedex export` on it)"
            )
    canvases, bodies, source = request_images(processed, images, seed)
    inputs = canvases_to_input(canvases, bundle.preprocess)
    with threadpool_limits(limits=1, user_api="blas"):  # as `pokedex serve` runs it
        ceiling = measure_ceiling(bundle, variant, inputs, window_s, threads)
    log.info("ceiling (%s, batch %d, no HTTP): %.1f img/s", variant, BATCH, ceiling)
    model = str(bundle.path.resolve())
    baseline = ServerRun("baseline", "FastAPI + eager PyTorch fp32, one image per request")
    runtime = "OpenVINO" if default_runtime(bundle) == "openvino" else "ONNX Runtime"

    def ours_run(n: int, name: str) -> ServerRun:
        per = "1 worker" if n == 1 else f"{n} workers"
        return ServerRun(name, f"pokedex serve: {runtime} {variant}, dynamic batching, {per}")

    ours = ours_run(workers[0], "ours")
    scaled = [(n, ours_run(n, f"ours {n}w")) for n in workers[1:]]
    batched = ServerRun(f"ours ×{BATCH}", f"the same server, {BATCH} images per request")
    lit = None
    if litserve and importlib.util.find_spec("litserve") is not None:
        from pokedex.benchmarks.litserve_server import BATCH_TIMEOUT_S, MAX_BATCH

        lit = ServerRun(
            "litserve",
            f"LitServe {importlib.metadata.version('litserve')}: the same {runtime} {variant} "
            f"predictor and preprocessing, max_batch_size {MAX_BATCH}, batch_timeout "
            f"{BATCH_TIMEOUT_S * 1000:g} ms, 1 inference worker",
        )
    with tempfile.TemporaryDirectory(prefix="pokedex-serving-bench-") as tmp:
        work = Path(tmp)
        port = free_port()
        naive = [sys.executable, "-m", "pokedex.benchmarks.naive_server", model, str(port)]
        base = f"http://127.0.0.1:{port}"
        with server_process(naive, f"{base}/healthz", work / "baseline.log") as (proc, ready):
            baseline.ready_s = ready
            _drive(baseline, proc, f"{base}/predict", bodies, concurrency, window_s, warmup_s)
        for round_ in range(rounds):
            if lit is not None:
                port = free_port()
                cmd = [
                    *(sys.executable, "-m", "pokedex.benchmarks.litserve_server", model),
                    *(str(port), "--variant", variant, "--threads", str(threads)),
                ]
                base = f"http://127.0.0.1:{port}"
                with server_process(cmd, f"{base}/health", work / "litserve.log") as (proc, ready):
                    lit.ready_s = lit.ready_s or ready
                    _drive(lit, proc, f"{base}/predict", bodies, concurrency, window_s, warmup_s)
            for n, run_ in [(workers[0], ours), *scaled]:
                with _ours(model, variant, threads, n, work) as (proc, base, ready):
                    run_.ready_s = run_.ready_s or ready
                    url = f"{base}/v1/predict"
                    _drive(run_, proc, url, bodies, concurrency, window_s, warmup_s)
                    if run_ is ours and batch_concurrency and round_ == 0:
                        url = f"{base}/v1/predict/batch"
                        _drive(
                            batched, proc, url, bodies, batch_concurrency, window_s, warmup_s, BATCH
                        )
    for server in (lit, ours, *(run_ for _, run_ in scaled)):
        if server is not None:
            server.levels = pool_levels(server.levels)
    return ServingResult(
        str(bundle.path),  # as the user named it; the servers get the resolved path
        variant,
        source,
        window_s,
        baseline,
        ours,
        ceiling,
        batched if batch_concurrency else None,
        lit,
        [run_ for _, run_ in scaled],
        rounds,
    )


@contextmanager
def _ours(
    model: str, variant: str, threads: int, workers: int, work: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """`pokedex serve` with ``workers`` processes, once ready: the process, its URL and its
    start-up seconds; stopped on the way out."""
    port = free_port()
    # the installed CLI, exactly as deployed; its prediction log goes to the temp folder
    cmd = [
        *(sys.executable, "-c", "from pokedex.cli import app; app()"),
        *("serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--model", model, "--variant", variant, "--workers", str(workers)),
    ]
    env = {
        "POKEDEX_PREDICTION_LOG_URL": f"sqlite:///{work / f'predictions-{workers}.db'}",
        "POKEDEX_THREADS": str(threads),
    }
    base = f"http://127.0.0.1:{port}"
    with server_process(cmd, f"{base}/readyz", work / f"ours-{workers}.log", env) as (proc, ready):
        yield proc, base, ready
