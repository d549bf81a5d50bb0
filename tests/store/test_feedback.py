"""Verdicts and kept images in the store: one verdict per prediction, agreement, cleaning
(no EXIF or GPS survives), content addressing, deletion everywhere, the export query."""

from __future__ import annotations

import io
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from pokedex.store import migrate
from pokedex.store.erasure import NothingToDeleteError
from pokedex.store.feedback import (
    DuplicateVerdictError,
    FeedbackStore,
    UnknownPredictionError,
)
from pokedex.store.ids import issued_at, new_prediction_id
from pokedex.store.images import KEPT_KEY, ImageTooLargeError, clean_image, kept_images
from pokedex.store.predlog import PredictionLog, predictions
from tests.conftest import encode, sprite


def _row(top1: str = "pikachu", known: bool = True, **values: Any) -> dict[str, Any]:
    return {
        "id": new_prediction_id(),
        "request_id": "r",
        "ts": datetime.now(UTC),
        "model_name": "pokedex",
        "model_version": "v7",
        "variant": "fp32",
        "top1": top1,
        "probability": 0.9,
        "known": known,
        "latency_ms": 1.0,
        "embedding_head": [0.5],
        **values,
    }


def _photo_with_gps() -> bytes:
    image = sprite(5, rgb=True, size=(400, 300))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 6  # orientation: rotate 90° to view
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS IFD
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif, quality=90)
    return buf.getvalue()


def _log(url: str, rows: list[dict[str, Any]]) -> None:
    log = PredictionLog(url, schema=migrate.upgrade)
    log.start()
    done = [Future() for _ in rows]
    for row, future in zip(rows, done, strict=True):
        log.record(row, future)
    assert all(f.result(timeout=60) for f in done)
    log.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'p.db'}"


def test_prediction_ids_carry_their_time() -> None:
    a, b = new_prediction_id(), new_prediction_id()
    assert a != b
    assert a.version == 7
    assert abs(issued_at(a) - datetime.now(UTC)) < timedelta(seconds=5)
    assert issued_at(uuid.uuid4()) is None


def test_cleaning_strips_exif_and_gps_and_keeps_the_picture_upright() -> None:
    data = _photo_with_gps()
    assert b"SecretCam" in data
    kept = clean_image(data, "JPEG", max_side=128, max_bytes=1_000_000, max_pixels=10**7)
    assert b"SecretCam" not in kept.data
    image = Image.open(io.BytesIO(kept.data))
    assert image.format == "WEBP"
    assert not image.getexif()
    assert "exif" not in image.info
    assert "xmp" not in image.info
    assert "icc_profile" not in image.info
    assert (kept.width, kept.height) == image.size == (96, 128)  # rotated upright, then capped
    again = clean_image(data, "JPEG", max_side=128, max_bytes=1_000_000, max_pixels=10**7)
    assert again.sha256 == kept.sha256  # content-addressed: the same picture, the same key
    with pytest.raises(ImageTooLargeError):
        clean_image(data, "JPEG", max_side=128, max_bytes=100, max_pixels=10**7)


def test_transparency_survives_cleaning() -> None:
    kept = clean_image(
        encode(sprite(1), "PNG"), "PNG", max_side=64, max_bytes=10**6, max_pixels=10**7
    )
    assert Image.open(io.BytesIO(kept.data)).mode == "RGBA"


def test_one_verdict_per_prediction(url: str) -> None:
    rows = [_row("pikachu"), _row("eevee", known=False), _row("abra")]
    _log(url, rows)
    store = FeedbackStore(url)
    first = store.record(rows[0]["id"], "correct", None)
    assert (first.species, first.agrees) == ("pikachu", True)
    with pytest.raises(DuplicateVerdictError):
        store.record(rows[0]["id"], "not_pokemon", None)
    assert store.record(rows[1]["id"], "not_pokemon", None).agrees  # model said unknown too
    assert not store.record(rows[2]["id"], "species", "zubat").agrees
    with pytest.raises(UnknownPredictionError):
        store.record(new_prediction_id(), "correct", None)
    acc = store.accuracy(count=10)
    assert (acc.verdicts, acc.agreeing) == (3, 2)
    assert acc.by_verdict == {"correct": 1, "species": 1, "not_pokemon": 1}
    assert store.accuracy(count=1).verdicts == 1
    assert store.accuracy(since=datetime.now(UTC) + timedelta(hours=1)).accuracy is None
    store.close()


def test_kept_images_are_stored_once_and_deleted_everywhere(url: str) -> None:
    kept = clean_image(_photo_with_gps(), "JPEG", max_side=64, max_bytes=10**6, max_pixels=10**7)
    other = clean_image(
        encode(sprite(2), "PNG"), "PNG", max_side=64, max_bytes=10**6, max_pixels=10**7
    )
    rows = [
        _row(**{KEPT_KEY: kept, "image": b"raw upload"}),
        _row(**{KEPT_KEY: kept, "image": None}),
        _row(**{KEPT_KEY: other, "image": None}),
    ]
    _log(url, rows)
    store = FeedbackStore(url)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kept_images)).scalar() == 2
    # by the id of the second prediction: the picture goes for both, the raw upload too
    gone = store.delete_image(rows[1]["id"])
    assert (gone.sha256, gone.kept_images, gone.links, gone.logged_images) == (kept.sha256, 1, 2, 1)
    with store.engine.connect() as conn:
        assert conn.execute(select(kept_images.c.sha256)).scalars().all() == [other.sha256]
        assert (
            conn.execute(
                select(predictions.c.image).where(predictions.c.id == rows[0]["id"])
            ).scalar()
            is None
        )
    with pytest.raises(NothingToDeleteError):
        store.delete_image(kept.sha256)
    assert store.delete_image(other.sha256).kept_images == 1
    with pytest.raises(NothingToDeleteError):
        store.delete_image(new_prediction_id())
    store.close()


def test_corrections_are_the_reviewed_verdicts_with_an_image(url: str) -> None:
    kept = clean_image(
        encode(sprite(3), "PNG"), "PNG", max_side=64, max_bytes=10**6, max_pixels=10**7
    )
    rows = [_row("pikachu", **{KEPT_KEY: kept}), _row("abra"), _row("eevee", **{KEPT_KEY: kept})]
    _log(url, rows)
    store = FeedbackStore(url)
    store.record(rows[0]["id"], "species", "raichu")
    store.record(rows[1]["id"], "correct", None)  # no kept image: never exported
    store.record(rows[2]["id"], "correct", None)
    assert store.corrections() == []  # nothing reviewed yet
    assert len(store.corrections(include_pending=True)) == 2
    store.review(rows[0]["id"], "accepted")
    store.review(rows[2]["id"], "rejected")
    [only] = store.corrections()
    assert (only.species, only.top1, only.model_version, only.sha256) == (
        "raichu",
        "pikachu",
        "v7",
        kept.sha256,
    )
    assert only.data == kept.data
    assert store.corrections(since=datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(UnknownPredictionError):
        store.review(new_prediction_id(), "accepted")
    store.close()
