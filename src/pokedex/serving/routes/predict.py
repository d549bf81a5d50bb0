"""Predictions: one image, or a batch with per-item results.

Body-size limits are enforced while the body is read, by the app's BodyLimitMiddleware
(``BATCH_PATH`` gets the larger batch limit); the file-count limit comes from the settings.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from pokedex.core.schemas import (
    BatchItem,
    BatchResponse,
    ErrorBody,
    ItemError,
    PredictResponse,
    UnprocessableBody,
)
from pokedex.serving.errors import ApiError
from pokedex.serving.pipeline import Upload, predict_uploads
from pokedex.serving.settings import Settings
from pokedex.serving.state import ModelDep, RequestIdDep, StateDep

TopK = Annotated[int, Query(ge=1, le=20, description="how many species to return")]
KeepImage = Annotated[
    bool,
    Query(
        description="keep a cleaned copy of the picture (no EXIF or GPS, at most "
        "POKEDEX_KEEP_IMAGE_MAX_SIDE px) with the prediction, so a verdict on it can become "
        "training data; off by default. An admin can delete it by prediction id or hash."
    ),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: {"model": ErrorBody} for status in (400, 413, 415, 503, 504)},
    422: {"model": UnprocessableBody},  # too small to recognise, or a malformed form
}
_FILENAME_CHARS = 200
BATCH_PATH = "/v1/predict/batch"


async def _read(file: UploadFile) -> Upload:
    name = (file.filename or "")[:_FILENAME_CHARS] or None
    return Upload(data=await file.read(), filename=name)


def build_router(settings: Settings) -> APIRouter:
    """The /v1/predict routes with the upload limits of ``settings``."""
    router = APIRouter(prefix="/v1/predict", tags=["predict"])

    @router.post(
        "",
        response_model=PredictResponse,
        responses=_ERRORS,
        form_limits={"max_files": 4, "max_fields": 16, "max_part_size": 64 * 1024},
    )
    async def predict(
        file: Annotated[UploadFile, File(description="a PNG, JPEG or WebP image")],
        state: StateDep,
        model: ModelDep,
        request_id: RequestIdDep,
        top_k: TopK = 5,
        keep_image: KeepImage = False,
    ) -> PredictResponse:
        """Top-k species, open-set flag, types, base stats and weaknesses of one image, and
        the prediction's id (what POST /v1/feedback takes)."""
        started = time.perf_counter()
        [result] = await predict_uploads(
            state, model, [await _read(file)], top_k, request_id, keep_image
        )
        if isinstance(result, ApiError):
            raise result
        return PredictResponse(
            **result.model_dump(),
            request_id=request_id,
            model=model.ref,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    @router.post(
        "/batch",
        response_model=BatchResponse,
        responses=_ERRORS,
        form_limits={"max_files": 1000, "max_fields": 16, "max_part_size": 64 * 1024},
    )
    async def predict_batch(
        files: Annotated[list[UploadFile], File(description="PNG, JPEG or WebP images")],
        state: StateDep,
        model: ModelDep,
        request_id: RequestIdDep,
        top_k: TopK = 5,
        keep_image: KeepImage = False,
    ) -> BatchResponse:
        """One result per file, in order; a bad file carries an error, the others succeed."""
        started = time.perf_counter()
        if len(files) > settings.max_batch_files:
            raise ApiError(
                413, f"{len(files)} files: a batch holds at most {settings.max_batch_files}"
            )
        uploads = [await _read(f) for f in files]
        results = await predict_uploads(state, model, uploads, top_k, request_id, keep_image)
        items = [
            BatchItem(
                index=i, filename=up.filename, error=ItemError(status=r.status, detail=r.detail)
            )
            if isinstance(r, ApiError)
            else BatchItem(index=i, filename=up.filename, prediction=r)
            for i, (up, r) in enumerate(zip(uploads, results, strict=True))
        ]
        return BatchResponse(
            request_id=request_id,
            model=model.ref,
            items=items,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    return router
