"""`pokedex benchmark inference`: every way we can run the model, measured in one process.

Rows (see :mod:`pokedex.benchmarks.variants`): PyTorch eager fp32, bf16 autocast and
torch.compile; ONNX Runtime fp32 and INT8; OpenVINO over the same ONNX files; a pruned and
fine-tuned model on ONNX Runtime. Each row gets top-1 on the test split, file size, batch-1
latency (p50/p99) and batch-32 throughput. Rows are timed in turn within each repeat, so load
from other processes hits every row alike; the table shows best and median over repeats.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pokedex.benchmarks.variants import BATCH, EAGER, ROWS, Context, NotInstalledError, Predict
from pokedex.core.bundle import read_bundle, update_meta
from pokedex.core.onnx_check import load_onnx_checked
from pokedex.core.predictor import VARIANTS
from pokedex.core.preprocess import canvases_to_input
from pokedex.errors import PokedexError
from pokedex.jobs.export import sample_canvases

log = logging.getLogger(__name__)
MAX_TOP1_LOSS = 0.01  # a serving default may lose at most 1 point of top-1 against eager fp32


@dataclass
class Row:
    """One way of running the model and what it measured."""

    name: str
    backend: str  # "pytorch", "onnxruntime" or "openvino"
    variant: str  # "fp32", "int8", "bf16", "compile" or "pruned"
    size_mb: float | None = None
    top1: float | None = None
    images: int = 0  # how many test images top-1 is over
    latency_ms: list[list[float]] = field(default_factory=list)  # batch-1 samples, per repeat
    throughput: list[float] = field(default_factory=list)  # batch-32 img/s, one per repeat
    note: str = ""
    error: str | None = None

    @property
    def servable(self) -> bool:
        """Torch-free and running a file that `pokedex export` puts in the bundle."""
        return self.backend != "pytorch" and self.variant in VARIANTS

    @property
    def p50_ms(self) -> list[float]:
        """Median batch-1 latency of each repeat."""
        return [float(np.median(r)) for r in self.latency_ms if r]

    @property
    def p99_ms(self) -> float | None:
        """99th percentile over every batch-1 sample."""
        samples = [s for r in self.latency_ms for s in r]
        return float(np.percentile(samples, 99)) if samples else None


def _error(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0][:160]}"


def _top1(predict: Predict, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 in batches of 32; the last batch is padded so compiled code sees one shape."""
    hits = 0
    for i in range(0, len(inputs), BATCH):
        x = inputs[i : i + BATCH]
        n = len(x)
        if n < BATCH:
            x = np.concatenate([x, np.repeat(x[-1:], BATCH - n, axis=0)])
        hits += int((predict(x)[:n].argmax(1) == labels[i : i + n]).sum())
    return hits / len(inputs)


def _measure(
    row: Row, predict: Predict, inputs: np.ndarray, iters: tuple[int, int], budget_s: float
) -> bool:
    """One repeat: batch-1 latency over distinct images, then batch-32 throughput.

    Each part stops early once it has run ``budget_s`` (after 3 calls); returns whether one did.
    """
    batch = np.resize(inputs, (BATCH, *inputs.shape[1:]))  # (32, 3, H, W), repeats if few
    predict(inputs[:1])  # untimed warm-up of both shapes: thread pools, allocator, caches
    predict(batch)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i in range(iters[0]):
        x = inputs[i % len(inputs)][None]  # (1, 3, H, W)
        start = time.perf_counter()
        predict(x)
        samples.append(1000 * (time.perf_counter() - start))
        if len(samples) >= 3 and time.perf_counter() > deadline:
            break
    row.latency_ms.append(samples)
    calls, start = 0, time.perf_counter()
    while calls < iters[1]:
        predict(batch)
        calls += 1
        if calls >= 3 and time.perf_counter() - start > budget_s:
            break
    row.throughput.append(calls * BATCH / (time.perf_counter() - start))
    return len(samples) < iters[0] or calls < iters[1]


def run(
    ref: str | Path,
    processed: Path,
    *,
    repeats: int = 3,
    images: int | None = None,
    batch1_iters: int = 100,
    batch32_iters: int = 10,
    budget_s: float = 5.0,
    bf16_images: int = 256,
    threads: int = 2,
    prune_amount: float = 0.3,
    prune_steps: int = 100,
    prune_structured: bool = True,
    seed: int = 0,
) -> list[Row]:
    """Measure every row on an exported bundle; top-1 over ``images`` test images (all if None).

    bf16 autocast has no fast kernels on a CPU without AVX-512 BF16 or AMX, so its top-1 is
    over the first ``bf16_images``, and every timing stops early after ``budget_s``.
    """
    from pokedex.store.registry import resolve_model

    bundle = resolve_model(str(ref))
    for name in VARIANTS.values():
        if not (bundle.path / name).is_file():
            raise PokedexError(f"{bundle.path} has no {name}: run `pokedex export` on it first")
        load_onnx_checked(bundle.path / name)
    canvases, labels = sample_canvases(processed, "test", images or sys.maxsize, seed)
    known = labels < len(bundle.classes)  # a small bundle may cover fewer species than the data
    inputs, labels = canvases_to_input(canvases[known], bundle.preprocess), labels[known]
    if not len(labels):
        raise PokedexError(
            f"{processed}: no test image of the bundle's {len(bundle.classes)} species"
        )
    load = os.getloadavg()[0]
    if load > 0.5:
        log.warning("load average %.1f before we start: timings will be noisy (OpenMP most)", load)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="pokedex-benchmark-"))
    prune = {
        "amount": prune_amount,
        "steps": prune_steps,
        "structured": prune_structured,
        "seed": seed,
    }
    try:
        rows, live = _load(
            Context(bundle, processed, work, threads, prune), inputs, labels, bf16_images
        )
        cut: set[str] = set()
        for r in range(repeats):
            for row, predict in live:
                if row.error is None:
                    try:
                        if _measure(row, predict, inputs, (batch1_iters, batch32_iters), budget_s):
                            cut.add(row.name)
                    except Exception as exc:  # a backend failing mid-run is a result, not a crash
                        row.error = _error(exc)
            log.info("repeat %d/%d done", r + 1, repeats)
    finally:
        torch.set_num_threads(previous)
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        if row.name in cut:
            row.note = "; ".join(filter(None, [row.note, f"fewer iterations ({budget_s:g} s cap)"]))
    return rows


def _load(
    ctx: Context, inputs: np.ndarray, labels: np.ndarray, bf16_images: int
) -> tuple[list[Row], list[tuple[Row, Predict]]]:
    """Load every row's model and measure its top-1; a row that fails keeps its error."""
    rows, live = [], []
    for name, backend, variant, loader in ROWS:
        row = Row(name, backend, variant)
        rows.append(row)
        try:
            loaded = loader(ctx, variant)
            row.size_mb, row.note = loaded.size_mb, loaded.note
            row.images = min(bf16_images, len(inputs)) if variant == "bf16" else len(inputs)
            row.top1 = _top1(loaded.predict, inputs[: row.images], labels[: row.images])
            live.append((row, loaded.predict))
        except NotInstalledError as exc:
            row.error = str(exc)
        except Exception as exc:  # e.g. torch.compile with no working compiler: report, go on
            row.error = _error(exc)
            log.warning("%s failed: %s", name, row.error)
    eager = next((p for r, p in live if r.name == EAGER), None)
    for row, _ in live:
        if row.images < len(inputs) and eager is not None:  # give a fair comparison point
            same = _top1(eager, inputs[: row.images], labels[: row.images])
            row.note = f"top-1 on {row.images} images (eager fp32 there: {same:.1%})"
    return rows, live


def serving_default(rows: list[Row]) -> Row | None:
    """The torch-free bundle variant with the best batch-32 throughput (what a batching
    server is bound by) among those within 1 point of eager fp32's top-1."""
    eager = next((r for r in rows if r.name == EAGER), None)
    if eager is None or eager.top1 is None:
        return None
    floor = eager.top1 - MAX_TOP1_LOSS
    ok = [
        r
        for r in rows
        if r.servable and r.error is None and r.throughput and (r.top1 or 0.0) >= floor
    ]
    return max(ok, key=lambda r: max(r.throughput), default=None)


def record_serving_default(bundle_path: Path, rows: list[Row]) -> Row | None:
    """Write the fastest servable variant within 1 point of top-1 into bundle.json.

    The server reads it as ``serving.variant`` and ``serving.runtime`` (ONNX Runtime or
    OpenVINO, both over the exported ONNX file) when started with ``auto`` settings.
    """
    choice = serving_default(rows)
    if choice is not None:
        update_meta(
            read_bundle(bundle_path),
            serving={
                "variant": choice.variant,
                "runtime": choice.backend,
                "top1": choice.top1,
                "batch32_img_s": max(choice.throughput),
                "measured": time.strftime("%Y-%m-%d"),
            },
        )
    return choice


def format_table(rows: list[Row]) -> str:
    """A markdown table (best / median over repeats where timings are noisy) and the choice."""
    eager = next((r for r in rows if r.name == EAGER), None)
    lines = [
        "| variant | top-1 | Δ vs eager | size MB | batch-1 p50 ms (best / median) "
        "| batch-1 p99 ms | batch-32 img/s (best / median) | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        delta = "–"
        if r.top1 is not None and eager and eager.top1 is not None and r.images == eager.images:
            delta = f"{100 * (r.top1 - eager.top1):+.1f} pt"
        top1 = f"{r.top1:.1%}" if r.top1 is not None else "–"
        size = f"{r.size_mb:.1f}" if r.size_mb is not None else "–"
        p50 = f"{min(r.p50_ms):.2f} / {np.median(r.p50_ms):.2f}" if r.p50_ms else "–"
        p99 = f"{r.p99_ms:.2f}" if r.p99_ms is not None else "–"
        tput = f"{max(r.throughput):.0f} / {np.median(r.throughput):.0f}" if r.throughput else "–"
        note = (f"**{r.error}**" if r.error else r.note).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r.name} | {top1} | {delta} | {size} | {p50} | {p99} | {tput} | {note} |")
    choice = serving_default(rows)
    verdict = f"**{choice.name}** (`{choice.backend}` `{choice.variant}`)" if choice else "none"
    lines += [
        "",
        f"Serving default (fastest torch-free variant ≤ 1 point below eager top-1): {verdict}",
    ]
    return "\n".join(lines)
