"""Images callers chose to keep: cleaned, content-addressed, stored once, deletable everywhere.

A kept image is never the uploaded file: its pixels are decoded (turned upright by the EXIF
orientation), shrunk to at most ``max_side`` pixels a side and re-encoded as WebP from the bare
pixels, so no EXIF, GPS, XMP or ICC block and no byte the client chose survives. It is stored
under the sha256 of those bytes, so the same picture kept twice is one row.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
)

from pokedex.core.preprocess import decode

MEDIA_TYPE = "image/webp"
KEPT_KEY = "kept_image"  # the key of a prediction-log row that carries its kept image
_QUALITY = 90

# the tables as revision 0002 creates them (the migration holds the constraints)
metadata = MetaData()
kept_images = Table(
    "kept_images",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("media_type", String(32), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
)
prediction_images = Table(
    "prediction_images",
    metadata,
    Column("prediction_id", Uuid, primary_key=True),
    Column("sha256", String(64), nullable=False),
)


@dataclass(frozen=True)
class KeptImage:
    """A cleaned image ready to store."""

    sha256: str
    data: bytes
    width: int
    height: int


class ImageTooLargeError(ValueError):
    """The cleaned image is still over the byte cap."""


def clean_image(
    data: bytes, fmt: str, *, max_side: int, max_bytes: int, max_pixels: int
) -> KeptImage:
    """``data`` (already accepted as ``fmt``) as a metadata-free WebP of at most ``max_side``
    pixels a side; ImageTooLargeError when even that is over ``max_bytes``."""
    image = decode(data, max_pixels=max_pixels, formats=(fmt,))
    image = ImageOps.exif_transpose(image)  # upright: the orientation tag is about to go
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "RGB"
    image = image.convert(mode)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    bare = Image.frombytes(mode, image.size, image.tobytes())  # pixels only, no info block
    buf = io.BytesIO()
    bare.save(buf, "WEBP", quality=_QUALITY, method=4)
    cleaned = buf.getvalue()
    if len(cleaned) > max_bytes:
        raise ImageTooLargeError(f"{len(cleaned):,} bytes after cleaning, over {max_bytes:,}")
    return KeptImage(hashlib.sha256(cleaned).hexdigest(), cleaned, *bare.size)


def insert_kept(conn: Connection, pairs: list[tuple[uuid.UUID, KeptImage]]) -> None:
    """Store each image once (by hash) and link it to its prediction, in ``conn``'s transaction."""
    if not pairs:
        return
    wanted = {image.sha256: image for _, image in pairs}
    have = set(
        conn.execute(select(kept_images.c.sha256).where(kept_images.c.sha256.in_(wanted)))
        .scalars()
        .all()
    )
    now = datetime.now(UTC)
    new = [
        {
            "sha256": image.sha256,
            "data": image.data,
            "media_type": MEDIA_TYPE,
            "bytes": len(image.data),
            "width": image.width,
            "height": image.height,
            "ts": now,
        }
        for sha, image in wanted.items()
        if sha not in have
    ]
    if new:
        conn.execute(insert(kept_images), new)
    conn.execute(
        insert(prediction_images),
        [{"prediction_id": pid, "sha256": image.sha256} for pid, image in pairs],
    )


def split_kept(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[Any, KeptImage]]]:
    """Prediction-log rows without their :data:`KEPT_KEY`, and the (id, image) pairs it held."""
    plain, pairs = [], []
    for row in rows:
        image = row.get(KEPT_KEY)
        plain.append({k: v for k, v in row.items() if k != KEPT_KEY})
        if image is not None:
            pairs.append((row["id"], image))
    return plain, pairs
