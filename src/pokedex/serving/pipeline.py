"""One prediction request, start to end: decode (thread pool) -> batch -> describe -> log.

Handlers call :func:`predict_uploads` and only format its result. Bad items come back as
:class:`ApiError` values (not raised), so a batch can answer per item.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pokedex.core.schemas import Prediction
from pokedex.monitoring.features import embedding_summary
from pokedex.serving.batching import BatcherClosedError, QueueFullError, Row
from pokedex.serving.errors import ApiError
from pokedex.serving.images import Prepared, prepare, sniff_format
from pokedex.serving.model import ServedModel
from pokedex.serving.settings import Settings
from pokedex.serving.state import ServingState
from pokedex.store.ids import new_prediction_id
from pokedex.store.images import KEPT_KEY, KeptImage, clean_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """One uploaded file's bytes (already size-checked by the body limit)."""

    data: bytes
    filename: str | None = None


async def predict_uploads(
    state: ServingState,
    model: ServedModel,
    uploads: list[Upload],
    top_k: int,
    request_id: str,
    keep_image: bool = False,
) -> list[Prediction | ApiError]:
    """Predictions for ``uploads`` in order; an item that cannot be read is its ApiError.

    Each prediction carries the id of its log row; with ``keep_image`` (and the log on) a
    cleaned copy of the picture is stored with the row and its hash comes back too.

    Raises ApiError 503 when the server is overloaded or shutting down, 504 past the timeout.
    """
    start = time.perf_counter()
    settings = state.settings
    keep = keep_image and state.predlog is not None
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            with state.batcher.incoming(len(uploads)):
                prepared = await _prepare_all(state, model, uploads, keep)
                good = [(i, p) for i, p in enumerate(prepared) if isinstance(p, Prepared)]
                kept = {i: p.kept for i, p in good if isinstance(p, _Kept)}
                futures = state.batcher.submit(model.predictor, [p.x for _, p in good])
            rows = await asyncio.gather(*futures)
    except QueueFullError as exc:
        raise ApiError(503, "server overloaded: try again shortly", {"Retry-After": "1"}) from exc
    except BatcherClosedError as exc:
        raise ApiError(503, "server shutting down", {"Retry-After": "5"}) from exc
    except TimeoutError as exc:
        raise ApiError(
            504, f"prediction took longer than {settings.request_timeout_s:g} s"
        ) from exc
    latency_ms = (time.perf_counter() - start) * 1000.0
    predictions: dict[int, Prediction] = {}
    committed: list[Future[bool]] = []
    for (i, item), row in zip(good, rows, strict=True):
        prediction_id = new_prediction_id()
        image = kept.get(i)
        if keep:
            state.metrics.images_kept.labels(result="refused" if image is None else "kept").inc()
        prediction = predictions[i] = model.describe(row, top_k).model_copy(
            update={"id": str(prediction_id), "image_sha256": image.sha256 if image else None}
        )
        top1 = prediction.species[0]
        state.metrics.observe_prediction(
            top1.name, top1.probability, prediction.types, prediction.known
        )
        if state.predlog is not None:
            raw = uploads[i].data if settings.log_images else None
            committed.append(Future())
            log_row = _log_row(request_id, model, prediction, row, item, latency_ms, raw)
            state.predlog.record({**log_row, "id": prediction_id, KEPT_KEY: image}, committed[-1])
    await _logged(state, committed)
    return [p if isinstance(p, ApiError) else predictions[i] for i, p in enumerate(prepared)]


async def _prepare_all(
    state: ServingState, model: ServedModel, uploads: list[Upload], keep: bool
) -> list[Prepared | ApiError]:
    """Decode ``uploads`` (and clean the copies to keep), in order.

    Small uploads (``inline_decode_bytes``, a sprite or a thumbnail: under about 2 ms) are
    decoded on the event loop, one at a time with other requests let in between: handing them
    to a thread cost more than decoding them, in CPU and in waits for the GIL (docs/serving.md).
    Larger ones go to the preprocessing pool, so a big photo never stalls the loop.
    """
    settings, pool = state.settings, state.preprocess_pool
    loop = asyncio.get_running_loop()
    in_pool = {
        i: loop.run_in_executor(pool, _prepare, up.data, model, settings, keep)
        for i, up in enumerate(uploads)
        if pool is not None and len(up.data) > settings.inline_decode_bytes
    }
    on_loop: dict[int, Prepared | ApiError] = {}
    for k, i in enumerate(i for i in range(len(uploads)) if i not in in_pool):
        if k:
            await asyncio.sleep(0)
        on_loop[i] = _prepare(uploads[i].data, model, settings, keep)
    return [on_loop[i] if i in on_loop else await in_pool[i] for i in range(len(uploads))]


async def _logged(state: ServingState, committed: list[Future[bool]]) -> None:
    """Wait until the log rows are committed, so a crash after the answer cannot lose them.

    A stalled database delays the answer by at most ``prediction_log_wait_ms``; rows still
    pending then are counted as unconfirmed (they are written later unless the process dies).
    """
    wait_s = state.settings.prediction_log_wait_ms / 1000
    if not committed or wait_s <= 0 or all(f.done() and f.result() for f in committed):
        return  # nothing to wait for: journaled rows are safe already
    _, pending = await asyncio.wait([asyncio.wrap_future(f) for f in committed], timeout=wait_s)
    if pending:
        state.metrics.log_unconfirmed.inc(len(pending))


@dataclass(frozen=True)
class _Kept(Prepared):
    """A prepared upload and the cleaned copy to keep (None when it could not be made)."""

    kept: KeptImage | None = None


def _prepare(
    data: bytes, model: ServedModel, settings: Settings, keep: bool
) -> Prepared | ApiError:
    """Runs on the event loop or in the preprocessing pool (:func:`_prepare_all`); returns the
    error instead of raising (per-item results)."""
    try:
        prepared = prepare(data, model.predictor, settings.max_pixels)
    except ApiError as exc:
        return exc
    if not keep:
        return prepared
    try:
        kept = clean_image(
            data,
            sniff_format(data) or "",
            max_side=settings.keep_image_max_side,
            max_bytes=settings.keep_image_max_bytes,
            max_pixels=settings.max_pixels,
        )
    except Exception as exc:  # the prediction stands; only the copy is not kept
        log.info("image not kept: %s", exc)
        kept = None
    return _Kept(x=prepared.x, stats=prepared.stats, kept=kept)


def _log_row(
    request_id: str,
    model: ServedModel,
    prediction: Prediction,
    row: Row,
    item: Prepared,
    latency_ms: float,
    image: bytes | None,
) -> dict[str, Any]:
    ref = model.ref
    embedding = embedding_summary(row.features[None])  # from (1, D)
    return {
        "request_id": request_id,
        "ts": datetime.now(UTC),
        "model_name": ref.name,
        "model_version": ref.version,
        "variant": ref.variant,
        "top1": prediction.species[0].name,
        "probability": prediction.species[0].probability,
        "known": prediction.known,
        "energy": row.energy,
        "latency_ms": latency_ms,
        **asdict(item.stats),
        "embedding_norm": float(embedding["embedding_norm"][0]),
        "embedding_mean": float(embedding["embedding_mean"][0]),
        "embedding_head": [round(float(v), 6) for v in embedding["embedding_head"][0]],
        "image": image,
    }
