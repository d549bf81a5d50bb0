"""Reading the prediction log back: the last N predictions of a model, or those of a time span."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, RowMapping, create_engine, inspect, select
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pokedex.errors import PokedexError
from pokedex.monitoring.drift import SCALARS, Observations
from pokedex.monitoring.features import EMBEDDING_HEAD
from pokedex.monitoring.window import MAX_ROWS, Window
from pokedex.store.predlog import predictions

_COLUMNS = {name: name for name in SCALARS} | {"confidence": "probability"}  # feature -> column


def open_log(url: str, *, missing_ok: bool = False) -> Engine:
    """An engine to read the prediction log; PokedexError if the URL is wrong.

    A missing SQLite file is an error unless ``missing_ok`` (connecting creates an empty one).
    """
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ValueError, ImportError) as exc:
        raise PokedexError(f"bad prediction-log URL {url!r}: {exc}") from exc
    database = engine.url.database
    missing = engine.dialect.name == "sqlite" and database and not Path(database).is_file()
    if missing and not missing_ok:
        engine.dispose()
        raise PokedexError(f"no prediction log at {database}: check the URL or --db")
    return engine


def load_window(
    engine: Engine,
    model_name: str,
    model_version: str,
    window: Window,
    now: datetime | None = None,
) -> Observations:
    """The features of one model's logged predictions in ``window`` (empty if none)."""
    table = predictions
    query = (
        select(
            table.c.ts,
            table.c.embedding_head,
            *(table.c[column].label(name) for name, column in _COLUMNS.items()),
        )
        .where(table.c.model_name == model_name, table.c.model_version == model_version)
        .order_by(table.c.ts.desc())
        .limit(window.count or MAX_ROWS)
    )
    if window.span is not None:
        query = query.where(table.c.ts >= (now or datetime.now(UTC)) - window.span)
    try:
        if not inspect(engine).has_table(table.name):
            return _observations([])
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot read the prediction log: {exc}") from exc
    return _observations(list(reversed(rows)))


def _observations(rows: list[RowMapping]) -> Observations:
    values = {
        name: np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=np.float64)
        for name in SCALARS
    }
    heads = [r["embedding_head"] for r in rows if r["embedding_head"]]
    width = len(heads[0]) if heads else EMBEDDING_HEAD
    embedding = np.array(heads, dtype=np.float64).reshape(-1, width)  # (N, D)
    times = [_utc(r["ts"]) for r in rows]
    return Observations(
        values=values,
        embedding=embedding,
        start=times[0] if times else None,
        end=times[-1] if times else None,
    )


def _utc(ts: datetime) -> datetime:
    # SQLite returns naive datetimes; the log writes UTC
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
