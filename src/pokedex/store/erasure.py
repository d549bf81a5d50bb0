"""Deleting a kept image everywhere the store holds it, on a user's or an admin's request.

By prediction id: that prediction's kept copy, the same picture kept by any other prediction
(it is one row, by hash), and the raw uploads ``POKEDEX_LOG_IMAGES`` logged with them. By hash:
the same, starting from the picture. One transaction: all of it goes, or none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from pokedex.errors import PokedexError
from pokedex.store.images import kept_images, prediction_images
from pokedex.store.predlog import predictions


class NothingToDeleteError(PokedexError):
    """No kept or logged image matches the id or hash."""


@dataclass(frozen=True)
class Deleted:
    """What deleting one image removed."""

    sha256: str | None
    kept_images: int
    links: int
    logged_images: int


def delete_image(engine: Engine, key: uuid.UUID | str) -> Deleted:
    """Delete the image of prediction ``key`` (a UUID) or with sha256 ``key`` everywhere;
    NothingToDeleteError when nothing matches, PokedexError when the store fails."""
    try:
        with engine.begin() as conn:
            logged: set[uuid.UUID] = set()
            if isinstance(key, uuid.UUID):
                sha = conn.execute(
                    select(prediction_images.c.sha256).where(
                        prediction_images.c.prediction_id == key
                    )
                ).scalar()
                logged.add(key)
            else:
                sha = key
            if sha is not None:
                logged |= set(
                    conn.execute(
                        select(prediction_images.c.prediction_id).where(
                            prediction_images.c.sha256 == sha
                        )
                    ).scalars()
                )
            cleared = 0
            if logged:
                cleared = conn.execute(
                    update(predictions)
                    .where(predictions.c.id.in_(logged), predictions.c.image.is_not(None))
                    .values(image=None)
                ).rowcount
            links = images = 0
            if sha is not None:
                links = conn.execute(
                    delete(prediction_images).where(prediction_images.c.sha256 == sha)
                ).rowcount
                images = conn.execute(
                    delete(kept_images).where(kept_images.c.sha256 == sha)
                ).rowcount
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot delete the image: {exc}") from exc
    if not (cleared or links or images):
        raise NothingToDeleteError(f"no kept or logged image for {key}")
    return Deleted(sha, images, links, cleared)
