"""The UI's HTTP client: typed calls to the Pokédex API, with timeouts and readable errors.

Every failure (API down, timeout, 4xx/5xx, an answer in the wrong shape) becomes an
:class:`ApiError` whose message a person can act on; nothing here imports Streamlit.
Connection failures are retried once (httpx's transport retry, with its short backoff);
requests that reached the API are never repeated.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from pokedex.core.schemas import (
    EmbeddingMap,
    FeedbackAccuracy,
    FeedbackResponse,
    ModelInfo,
    PredictResponse,
    SpeciesInfo,
    SpeciesList,
    TypeMatchups,
)

M = TypeVar("M", bound=BaseModel)

CONNECT_TIMEOUT_S = 5.0
_DETAIL_CHARS = 300
# what happened and what to do, for answers that do not say it themselves
_MEANING = {
    400: "The Pokédex could not read that",
    404: "Not found",
    413: "That file is too large",
    415: "That file type is not supported",
    422: "The Pokédex refused the request",
    429: "The Pokédex is busy: try again in a moment",
    500: "The Pokédex failed: try again, and tell whoever runs it if it keeps failing",
    503: "The Pokédex is busy or still starting: try again in a moment",
    504: "The Pokédex took too long: try again in a moment",
}
# statuses whose detail the API writes for the person who sent the request ("the image is 8×8
# pixels, too small to recognise..."): shown as it is, without a second headline
_OWN_WORDS = {400, 404, 413, 415, 422}
# a refused verdict, in words for the person who gave it (the API's words name its routes)
_VERDICT_REFUSED = {
    404: "The Pokédex has no record of this answer, so it cannot take a verdict on it (its "
    "prediction log may be off)",
    409: "This answer already has a verdict: one per answer",
    422: "The Pokédex does not know that species: pick one from the list",
}


class ApiError(Exception):
    """A failed API call; ``str(error)`` is the message to show, ``status`` the HTTP status
    (for code to act on, never for people)."""

    def __init__(
        self, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s  # the API's Retry-After, when it sent one


class PokedexApi:
    """A client for one API base URL (thread-safe: Streamlit sessions may share it)."""

    def __init__(
        self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport or httpx.HTTPTransport(retries=1),
        )

    def predict(
        self, data: bytes, filename: str, top_k: int = 5, keep_image: bool = False
    ) -> PredictResponse:
        """Top-k species, types, stats and weaknesses for one image; ``keep_image`` asks the
        API to keep a cleaned copy with the answer, for a verdict to turn into training data."""
        files = {"file": (filename, data, "application/octet-stream")}
        params: dict[str, Any] = {"top_k": top_k}
        if keep_image:
            params["keep_image"] = "true"
        response = self._send("POST", "/v1/predict", params=params, files=files)
        return self._parse(response, PredictResponse)

    def feedback(self, prediction_id: str | UUID, verdict: str) -> FeedbackResponse:
        """Record what the picture behind a prediction shows: ``"correct"``, ``"not_pokemon"``
        or a species name. One verdict per prediction: a second is an ApiError (409)."""
        try:
            body = {"prediction_id": str(UUID(str(prediction_id))), "verdict": verdict}
        except ValueError as exc:  # so that a 422 below is always about the verdict
            raise ApiError(f"{str(prediction_id)[:40]!r} is not a prediction id.") from exc
        try:
            response = self._send("POST", "/v1/feedback", json=body)
        except ApiError as exc:
            raise _refused_verdict(exc) from exc
        return self._parse(response, FeedbackResponse)

    def feedback_accuracy(self, window: str | None = None) -> FeedbackAccuracy:
        """How often the verdicts of ``window`` (the last N, or a span such as ``7d``; the
        server's default when None) agree with the model, and the count of each kind."""
        params = {"window": window} if window else None
        response = self._send("GET", "/v1/monitoring/feedback", params=params)
        return self._parse(response, FeedbackAccuracy)

    def species(self, name: str) -> SpeciesInfo:
        """The Pokédex entry of one species."""
        return self._parse(self._send("GET", f"/v1/species/{quote(name, safe='')}"), SpeciesInfo)

    def species_image(self, name: str) -> bytes | None:
        """The species' picture (WebP bytes), or None when the API has none for it."""
        try:
            response = self._send("GET", f"/v1/species/{quote(name, safe='')}/image")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return response.content

    def search(self, query: str = "", limit: int = 2000) -> SpeciesList:
        """Species matching a name fragment or number (all of them for an empty query)."""
        response = self._send("GET", "/v1/species", params={"q": query, "limit": limit})
        return self._parse(response, SpeciesList)

    def type_matchups(self, type_name: str) -> TypeMatchups:
        """What a type hits and what hits it."""
        path = f"/v1/types/{quote(type_name, safe='')}"
        return self._parse(self._send("GET", path), TypeMatchups)

    def model_info(self) -> ModelInfo:
        """The served model's version, metrics and confusions."""
        return self._parse(self._send("GET", "/v1/model"), ModelInfo)

    def embeddings(self) -> EmbeddingMap | None:
        """The bundle's embedding map, or None when the bundle has none."""
        try:
            response = self._send("GET", "/v1/model/embeddings")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return self._parse(response, EmbeddingMap)

    def metrics(self) -> str:
        """The Prometheus text of ``/metrics``."""
        return self._send("GET", "/metrics").text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"The Pokédex API at {self.base_url} did not answer within "
                f"{self.timeout_s:g} s: it may be busy, try again in a moment."
            ) from exc
        except httpx.ConnectError as exc:
            raise ApiError(
                f"Cannot reach the Pokédex API at {self.base_url}: start it with "
                "`pokedex serve`, or point POKEDEX_API_URL at it."
            ) from exc
        except httpx.TransportError as exc:
            raise ApiError(
                f"The connection to the Pokédex API at {self.base_url} failed "
                f"({type(exc).__name__}): try again."
            ) from exc
        if response.is_error:
            raise ApiError(_message(response), response.status_code, _retry_after(response))
        return response

    def _parse(self, response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiError(
                f"The API at {self.base_url} answered {response.request.url.path} in a shape "
                "this UI does not know: are the UI and the API the same version?"
            ) from exc


def _refused_verdict(exc: ApiError) -> ApiError:
    """A refused verdict in the words of the person who gave it; a 409 with Retry-After is a
    prediction still on its way to the log, not a second verdict."""
    wait = exc.retry_after_s
    if exc.status == 409 and wait is not None:
        message = f"The Pokédex is still recording this answer: try again in {wait:.0f} s"
    elif exc.status == 429:
        later = f"in {wait:.0f} s" if wait is not None else "in a minute"
        message = f"Too many verdicts from here just now: try again {later}"
    elif exc.status in _VERDICT_REFUSED:
        message = _VERDICT_REFUSED[exc.status]
    else:
        return exc
    return ApiError(f"{message}.", exc.status, wait)


def _retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the API sends seconds, never a date); None without."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _message(response: httpx.Response) -> str:
    """A failed answer in plain words: the API's own sentence when it wrote one for people,
    else what the status means, with the detail in brackets. Never the status code itself."""
    detail, own_words = _detail(response)
    if own_words and response.status_code in _OWN_WORDS:
        return detail[:1].upper() + detail[1:]
    meaning = _MEANING.get(response.status_code, "The Pokédex answered with an error: try again")
    return f"{meaning} ({detail})"


def _detail(response: httpx.Response) -> tuple[str, bool]:
    """The ``detail`` of an error body (FastAPI's validation lists flattened), or its text; and
    whether it was a sentence of the API's own (a string ``detail``)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    own_words = isinstance(detail, str) and bool(detail)
    if isinstance(detail, list):  # FastAPI 422: [{"loc": [...], "msg": ...}, ...]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}"
            if isinstance(d, dict)
            else str(d)
            for d in detail
        )
    text = str(detail) if detail else response.text.strip() or response.reason_phrase
    return text[:_DETAIL_CHARS] or "no details", own_words
