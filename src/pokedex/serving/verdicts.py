"""Verdicts on predictions: parse, check, store, count (the routes in routes/feedback.py).

A verdict is accepted only for a prediction whose log row is committed: the store looks the
id up in the same transaction that inserts the verdict. An id the log does not hold yet but
that was minted moments ago (its UUIDv7 time, within ``feedback_pending_s``) answers 409 with
Retry-After, since its row may still be on the writer's queue, in this worker or another; an
older unknown id is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import unicodedata
from datetime import UTC, datetime, timedelta

from pokedex.core.schemas import FeedbackAccuracy, FeedbackRequest, FeedbackResponse
from pokedex.errors import PokedexError
from pokedex.monitoring.window import Window, parse_window
from pokedex.serving.errors import ApiError
from pokedex.serving.model import ServedModel
from pokedex.serving.ratelimit import retry_after
from pokedex.serving.state import ServingState
from pokedex.store.feedback import (
    Accuracy,
    DuplicateVerdictError,
    FeedbackStore,
    UnknownPredictionError,
    Verdict,
    VerdictKind,
)
from pokedex.store.ids import issued_at

log = logging.getLogger(__name__)

MAX_INFLIGHT = 16  # verdicts written at once per worker; more wait for a 503's Retry-After
# a fresh prediction's row may still be on its way to the database (answers go out once the row
# is journaled): a verdict for it waits this long for the row before answering 409
PENDING_WAIT_S = 1.0
_PENDING_POLL_S = 0.02
_CORRECT = {"correct"}
_NOT_POKEMON = {"not_pokemon", "not_a_pokemon", "notpokemon", "none"}


def parse_verdict(text: str, model: ServedModel) -> tuple[VerdictKind, str | None]:
    """``(kind, species)`` of a verdict's text; ApiError 422 naming the choices otherwise."""
    folded = unicodedata.normalize("NFKD", text.strip()).encode("ascii", "ignore").decode()
    key = folded.lower().replace(" ", "_").replace("-", "_")
    if key in _CORRECT:
        return "correct", None
    if key in _NOT_POKEMON:
        return "not_pokemon", None
    species = model.species(text.strip())
    if species is None:
        raise ApiError(
            422,
            f'unknown species {text.strip()[:100]!r}: a verdict is "correct", "not_pokemon" '
            "or the name of a species GET /v1/species lists",
        )
    return "species", species.name


def check_rate(state: ServingState, client: str) -> None:
    """429 with Retry-After when ``client`` has used up its verdicts for now."""
    if state.feedback_limiter is None:
        return
    wait = state.feedback_limiter.take(client)
    if wait > 0:
        state.metrics.feedback_refused.labels(reason="rate_limited").inc()
        raise ApiError(
            429,
            f"too many verdicts from this client: at most {state.settings.feedback_burst} at "
            f"once and {state.settings.feedback_per_minute:g} a minute",
            {"Retry-After": retry_after(wait)},
        )


def _store(state: ServingState) -> FeedbackStore:
    if state.feedback is None:
        raise ApiError(404, "the prediction log is off (POKEDEX_PREDICTION_LOG_URL is empty)")
    return state.feedback


async def _record(
    state: ServingState,
    store: FeedbackStore,
    body: FeedbackRequest,
    kind: VerdictKind,
    species: str | None,
) -> Verdict:
    """Record the verdict, waiting up to PENDING_WAIT_S for a just-issued prediction's row."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PENDING_WAIT_S
    while True:
        try:
            return await asyncio.to_thread(store.record, body.prediction_id, kind, species)
        except UnknownPredictionError:
            fresh = _just_issued(body, state.settings.feedback_pending_s)
            if not fresh or loop.time() >= deadline:
                raise
            await asyncio.sleep(_PENDING_POLL_S)


async def submit(
    state: ServingState, model: ServedModel, body: FeedbackRequest
) -> FeedbackResponse:
    """Record one verdict; ApiError 404/409/422/503 with the reason otherwise."""
    store = _store(state)
    metrics = state.metrics
    try:
        kind, species = parse_verdict(body.verdict, model)
    except ApiError:
        metrics.feedback_refused.labels(reason="unknown_species").inc()
        raise
    if state.feedback_inflight >= MAX_INFLIGHT:
        metrics.feedback_refused.labels(reason="store_error").inc()
        raise ApiError(
            503, "too many verdicts being written: try again shortly", {"Retry-After": "1"}
        )
    state.feedback_inflight += 1
    try:
        verdict = await _record(state, store, body, kind, species)
    except UnknownPredictionError as exc:
        if _just_issued(body, state.settings.feedback_pending_s):
            metrics.feedback_refused.labels(reason="not_recorded_yet").inc()
            raise ApiError(
                409,
                f"prediction {body.prediction_id} is not recorded yet: retry in a second",
                {"Retry-After": "1"},
            ) from exc
        metrics.feedback_refused.labels(reason="unknown_prediction").inc()
        raise ApiError(404, f"no prediction with id {body.prediction_id}") from exc
    except DuplicateVerdictError as exc:
        metrics.feedback_refused.labels(reason="duplicate").inc()
        raise ApiError(
            409, f"prediction {body.prediction_id} already has a verdict: one per prediction"
        ) from exc
    except PokedexError as exc:
        metrics.feedback_refused.labels(reason="store_error").inc()
        raise ApiError(
            503, "the feedback store is unavailable: try again later", {"Retry-After": "30"}
        ) from exc
    finally:
        state.feedback_inflight -= 1
    metrics.feedback.labels(verdict=verdict.verdict).inc()
    await _refresh(state)
    return FeedbackResponse(
        prediction_id=verdict.prediction_id,
        verdict=verdict.verdict,
        species=verdict.species,
        agrees=verdict.agrees,
        received_at=verdict.ts,
    )


async def accuracy(state: ServingState, window: Window) -> FeedbackAccuracy:
    """Accuracy-by-feedback over ``window`` (also published as the gauges when it is the
    server's own window); ApiError 404 with the log off, 503 when the store cannot be read."""
    store = _store(state)
    try:
        result = await asyncio.to_thread(_window, store, window)
    except PokedexError as exc:
        raise ApiError(503, str(exc), {"Retry-After": "30"}) from exc
    if window.text == state.settings.feedback_window:
        state.metrics.publish_feedback(result.verdicts, result.accuracy)
    return FeedbackAccuracy(
        window=window.text,
        verdicts=result.verdicts,
        agreeing=result.agreeing,
        accuracy=result.accuracy,
        by_verdict=result.by_verdict,
    )


def _window(store: FeedbackStore, window: Window) -> Accuracy:
    since = datetime.now(UTC) - window.span if window.span is not None else None
    return store.accuracy(count=window.count, since=since)


async def _refresh(state: ServingState) -> None:
    """Re-publish the accuracy gauges after a verdict (a failure only leaves them stale)."""
    with contextlib.suppress(ApiError):
        await accuracy(state, parse_window(state.settings.feedback_window))


def _just_issued(body: FeedbackRequest, pending_s: float) -> bool:
    minted = issued_at(body.prediction_id)
    if minted is None:
        return False
    age = datetime.now(UTC) - minted
    return timedelta(seconds=-5) <= age <= timedelta(seconds=pending_s)


async def watch(state: ServingState, interval_s: float) -> None:
    """Publish the accuracy-by-feedback gauges now and every ``interval_s`` seconds."""
    while True:
        try:
            await _refresh(state)
        except Exception:
            log.exception("accuracy-by-feedback refresh failed")  # the next period tries again
        await asyncio.sleep(interval_s)
