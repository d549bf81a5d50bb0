"""Verdicts on predictions, read and written beside the prediction log.

A verdict says what the picture behind one prediction shows: ``correct`` (the top-1 species),
``species`` (another species, named), or ``not_pokemon``. There is at most one per prediction
(the unique constraint of revision 0002 decides a race). It agrees with the model when it
names the model's top-1 species while the model said "known", or says ``not_pokemon`` while
the model said "not a known species". Reviewing (accepted / rejected) decides which verdicts
`pokedex data feedback export` turns into training data.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pokedex.errors import PokedexError
from pokedex.store.erasure import Deleted, delete_image
from pokedex.store.images import kept_images, prediction_images
from pokedex.store.migrate import upgrade
from pokedex.store.predlog import make_engine, predictions

VerdictKind = Literal["correct", "species", "not_pokemon"]
Review = Literal["pending", "accepted", "rejected"]
VERDICTS: tuple[VerdictKind, ...] = ("correct", "species", "not_pokemon")
MAX_WINDOW = 100_000

metadata = MetaData()
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", Uuid, nullable=False, unique=True),
    Column("verdict", String(16), nullable=False),
    Column("species", String(128)),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("review", String(16), nullable=False, server_default="pending"),
    Column("reviewed_at", DateTime(timezone=True)),
)


class UnknownPredictionError(PokedexError):
    """No logged prediction has this id."""


class DuplicateVerdictError(PokedexError):
    """The prediction already has its verdict."""


@dataclass(frozen=True)
class Verdict:
    """One recorded verdict, and whether it agrees with the model."""

    prediction_id: uuid.UUID
    verdict: VerdictKind
    species: str | None
    agrees: bool
    ts: datetime


@dataclass(frozen=True)
class Accuracy:
    """How often the verdicts of a window agree with the model."""

    verdicts: int
    agreeing: int
    by_verdict: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """The share of verdicts agreeing with the model; None with no verdict."""
        return self.agreeing / self.verdicts if self.verdicts else None


@dataclass(frozen=True)
class Correction:
    """A verdict with its kept image: one row of a feedback export."""

    prediction_id: uuid.UUID
    verdict: VerdictKind
    species: str | None
    top1: str
    model_name: str
    model_version: str
    ts: datetime
    review: Review
    sha256: str
    data: bytes


@dataclass(frozen=True)
class Listed:
    """One verdict as a reviewer sees it."""

    prediction_id: uuid.UUID
    top1: str
    verdict: VerdictKind
    species: str | None
    review: Review
    ts: datetime
    sha256: str | None  # the kept image, if any


def agrees(verdict: str, species: str | None, top1: str, known: bool) -> bool:
    """Whether a verdict agrees with the model's answer (top-1 and its open-set flag)."""
    if verdict == "not_pokemon":
        return not known
    return known and species == top1


def read_accuracy(
    engine: Engine, count: int | None = None, since: datetime | None = None
) -> Accuracy | None:
    """Agreement of the last ``count`` verdicts (or those since ``since``) with the model;
    None when the store has no feedback table (never migrated): reading changes nothing."""
    query = (
        select(feedback.c.verdict, feedback.c.species, predictions.c.top1, predictions.c.known)
        .join(predictions, predictions.c.id == feedback.c.prediction_id)
        .order_by(feedback.c.ts.desc())
        .limit(min(count or MAX_WINDOW, MAX_WINDOW))
    )
    if since is not None:
        query = query.where(feedback.c.ts >= since)
    try:
        if not inspect(engine).has_table(feedback.name):
            return None
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot read the verdicts: {exc}") from exc
    agreeing = sum(agrees(r.verdict, r.species, r.top1, r.known) for r in rows)
    by_verdict = {v: 0 for v in VERDICTS} | dict(Counter(r.verdict for r in rows))
    return Accuracy(len(rows), agreeing, by_verdict)


class FeedbackStore:
    """Verdicts, kept images and their deletion over one database (migrated on first use).

    Every method blocks: call them from a worker thread. Database failures raise PokedexError.
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._ready = False
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def _migrated(self) -> Engine:
        with self._lock:
            if not self._ready:
                upgrade(self.engine)
                self._ready = True
        return self.engine

    def record(
        self, prediction_id: uuid.UUID, verdict: VerdictKind, species: str | None
    ) -> Verdict:
        """Store the verdict on ``prediction_id``; ``species`` names the species for a
        ``species`` verdict (``correct`` takes the top-1, ``not_pokemon`` none).

        UnknownPredictionError when no such prediction is logged, DuplicateVerdictError when
        it has a verdict already.
        """
        engine = self._migrated()
        now = datetime.now(UTC)
        try:
            with engine.begin() as conn:
                row = conn.execute(
                    select(predictions.c.top1, predictions.c.known).where(
                        predictions.c.id == prediction_id
                    )
                ).first()
                if row is None:
                    raise UnknownPredictionError(f"no prediction with id {prediction_id}")
                taken = conn.execute(
                    select(feedback.c.id).where(feedback.c.prediction_id == prediction_id)
                ).first()
                if taken is not None:
                    raise DuplicateVerdictError(f"prediction {prediction_id} already has a verdict")
                shows = row.top1 if verdict == "correct" else species
                shows = None if verdict == "not_pokemon" else shows
                conn.execute(
                    insert(feedback).values(
                        prediction_id=prediction_id,
                        verdict=verdict,
                        species=shows,
                        ts=now,
                        review="pending",
                    )
                )
        except IntegrityError as exc:  # another worker's verdict won the race
            raise DuplicateVerdictError(
                f"prediction {prediction_id} already has a verdict"
            ) from exc
        except SQLAlchemyError as exc:
            raise PokedexError(f"cannot store the verdict: {exc}") from exc
        return Verdict(
            prediction_id, verdict, shows, agrees(verdict, shows, row.top1, row.known), now
        )

    def accuracy(self, count: int | None = None, since: datetime | None = None) -> Accuracy:
        """Agreement of the last ``count`` verdicts (or those since ``since``) with the model."""
        result = read_accuracy(self._migrated(), count, since)
        assert result is not None  # migrated: the table exists
        return result

    def verdicts(self, review: Review | None = None, limit: int = 100) -> list[Listed]:
        """The newest ``limit`` verdicts (those with ``review`` when given), oldest first."""
        engine = self._migrated()
        query = (
            select(
                feedback.c.prediction_id,
                predictions.c.top1,
                feedback.c.verdict,
                feedback.c.species,
                feedback.c.review,
                feedback.c.ts,
                prediction_images.c.sha256,
            )
            .join(predictions, predictions.c.id == feedback.c.prediction_id)
            .outerjoin(
                prediction_images, prediction_images.c.prediction_id == feedback.c.prediction_id
            )
            .order_by(feedback.c.ts.desc(), feedback.c.id.desc())
            .limit(limit)
        )
        if review is not None:
            query = query.where(feedback.c.review == review)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise PokedexError(f"cannot read the verdicts: {exc}") from exc
        return [Listed(*row) for row in reversed(rows)]

    def review(self, prediction_id: uuid.UUID, review: Review) -> None:
        """Mark a verdict accepted or rejected; UnknownPredictionError if it has none."""
        engine = self._migrated()
        try:
            with engine.begin() as conn:
                done = conn.execute(
                    update(feedback)
                    .where(feedback.c.prediction_id == prediction_id)
                    .values(review=review, reviewed_at=datetime.now(UTC))
                ).rowcount
        except SQLAlchemyError as exc:
            raise PokedexError(f"cannot store the review: {exc}") from exc
        if not done:
            raise UnknownPredictionError(f"no verdict on prediction {prediction_id}")

    def delete_image(self, key: uuid.UUID | str) -> Deleted:
        """Delete an image everywhere (:func:`pokedex.store.erasure.delete_image`)."""
        return delete_image(self._migrated(), key)

    def corrections(
        self, since: datetime | None = None, *, include_pending: bool = False
    ) -> list[Correction]:
        """Verdicts with a kept image, oldest first: the accepted ones (and the pending ones
        when ``include_pending``), those given at or after ``since`` when set."""
        engine = self._migrated()
        reviews = ("accepted", "pending") if include_pending else ("accepted",)
        query = (
            select(
                feedback.c.prediction_id,
                feedback.c.verdict,
                feedback.c.species,
                feedback.c.ts,
                feedback.c.review,
                predictions.c.top1,
                predictions.c.model_name,
                predictions.c.model_version,
                kept_images.c.sha256,
                kept_images.c.data,
            )
            .join(predictions, predictions.c.id == feedback.c.prediction_id)
            .join(prediction_images, prediction_images.c.prediction_id == feedback.c.prediction_id)
            .join(kept_images, kept_images.c.sha256 == prediction_images.c.sha256)
            .where(feedback.c.review.in_(reviews))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        if since is not None:
            query = query.where(feedback.c.ts >= since)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise PokedexError(f"cannot read the verdicts: {exc}") from exc
        return [
            Correction(
                prediction_id=r.prediction_id,
                verdict=r.verdict,
                species=r.species,
                top1=r.top1,
                model_name=r.model_name,
                model_version=r.model_version,
                ts=r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC),
                review=r.review,
                sha256=r.sha256,
                data=r.data,
            )
            for r in rows
        ]
