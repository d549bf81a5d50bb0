"""The prediction log: one row per prediction, written off the request path.

Requests put rows on a bounded in-memory queue; one background thread inserts them in
batches through SQLAlchemy (SQLite by default, any SQLAlchemy URL such as PostgreSQL). A row
can carry a future that turns True once the row is safe: the API answers after that, so a
crash (kill -9) after an answer never loses its row. With a journal (:mod:`.journal`) a row is
safe as soon as it is appended there, and the future resolves at once; without one, once its
batch is committed. A slow or failing database slows a prediction only by a bounded wait: when
the queue is full, or every retry fails, the row is dropped and counted (a journaled row is
kept in the journal instead, for the next start to replay). A clean shutdown flushes the queue.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pokedex.errors import PokedexError
from pokedex.store.images import insert_kept, split_kept
from pokedex.store.journal import Journal, orphans

log = logging.getLogger(__name__)

metadata = MetaData()
predictions = Table(
    "predictions",
    metadata,
    Column("id", Uuid, primary_key=True),  # one per prediction; a retried insert cannot duplicate
    Column("request_id", String(128), nullable=False, index=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("variant", String(16), nullable=False),
    Column("top1", String(128), nullable=False),
    Column("probability", Float, nullable=False),
    Column("known", Boolean, nullable=False),
    Column("energy", Float),
    Column("latency_ms", Float, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    # image statistics and embedding summary: pokedex.monitoring.features defines each
    Column("brightness", Float),
    Column("contrast", Float),
    Column("colourfulness", Float),
    Column("sharpness", Float),
    Column("alpha_coverage", Float),
    Column("embedding_norm", Float),
    Column("embedding_mean", Float),
    Column("embedding_head", JSON),  # the leading dimensions: the multivariate drift test
    Column("image", LargeBinary),  # only when settings.log_images is on
)

_STOP: Any = object()
_RETRIES = 3
_IDS_PER_QUERY = 500  # under SQLite's limit on bound parameters


def default_journal(url: str) -> Path | None:
    """Where the journal of a SQLite log lives: a folder beside the database file (None for
    in-memory SQLite and for server databases, whose journal must be named explicitly)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(f"{parsed.database}.journal")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-locking transactions."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's BEGIN
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # take the write lock up front, so busy_timeout applies instead of SQLITE_BUSY
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class PredictionLog:
    """Bounded queue + one writer thread + batched inserts."""

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 256,
        on_drop: Callable[[str, int], None] = lambda reason, n: None,
        retry_delay: float = 0.2,
        schema: Callable[[Engine], object] = metadata.create_all,
        journal: str | Path | None = None,
    ) -> None:
        """``schema`` readies the database before the first write (the API passes the
        migrations, :func:`pokedex.store.migrate.upgrade`); ``journal``: a folder for this
        log's journal (:mod:`.journal`), None: rows are safe only once committed."""
        self.url = url
        self.schema = schema
        self.retry_delay = retry_delay
        self.batch_size = batch_size
        self.on_drop = on_drop
        self.journal = Journal(journal) if journal else None
        # (row, its commit future or None, its journal segment or None), or _STOP
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._engine: Engine | None = None
        self._table_ready = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (it creates the table on its first write)."""
        self._engine = make_engine(self.url)  # a malformed URL fails here, at start-up
        self._thread = threading.Thread(target=self._loop, name="pokedex-predlog", daemon=True)
        self._thread.start()

    def record(self, row: dict[str, Any], committed: Future[bool] | None = None) -> bool:
        """Queue one row without blocking; False (and a counted drop) when the queue is full.

        ``committed`` resolves True once the row is safe (journaled, or else in the database),
        False if it is dropped. Called from one thread (the API's event loop).
        """
        if self._queue.full():
            self.on_drop("queue_full", 1)
            _resolve([committed], False)
            return False
        segment = None
        if self.journal is not None:
            try:
                segment = self.journal.append(row)
            except (OSError, TypeError) as exc:  # a full disk; a row holding a picture's bytes
                log.debug("row not journaled, it waits for its commit: %s", exc)
        self._queue.put_nowait((row, committed, segment))
        if segment is not None:
            _resolve([committed], True)
        return True

    def close(self, timeout: float = 20.0) -> None:
        """Write everything queued, then stop the thread and release the database."""
        if self._thread is not None:
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("prediction log did not flush within %.0f s", timeout)
        if self.journal is not None:
            kept = self.journal.close()
            if kept:
                log.warning("%d prediction rows stay in the journal for the next start", kept)
        if self._engine is not None:
            self._engine.dispose()

    def _loop(self) -> None:
        if self.journal is not None:
            self._replay()
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while len(items) < self.batch_size:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in items):
                stopping = True
                items = [item for item in items if item is not _STOP]
            if items:
                self._commit(items)

    def _commit(self, items: list[tuple[dict[str, Any], Future[bool] | None, int | None]]) -> None:
        """Write a batch; tell the journal and the waiting callers how it went."""
        written = self._write([row for row, _, _ in items])
        segments = [segment for _, _, segment in items if segment is not None]
        if written and self.journal is not None:
            self.journal.committed(segments)
        elif not written:
            # journaled rows are not lost: their segment stays for the next start to replay
            self.on_drop("db_error", len(items) - len(segments))
            if segments:
                self.on_drop("deferred", len(segments))
        _resolve([committed for _, committed, segment in items if segment is None], written)

    def _ready(self) -> None:
        assert self._engine is not None
        if not self._table_ready:
            # here, not in start(): a database that is down at boot must not stop the API
            self.schema(self._engine)
            self._table_ready = True

    def _write(self, rows: list[dict[str, Any]], *, missing_only: bool = False) -> bool:
        """Insert ``rows`` in one transaction, with retries; False when every try failed.
        ``missing_only``: skip rows whose id is in the table already (a journal replay)."""
        assert self._engine is not None
        for attempt in range(_RETRIES):
            try:
                self._ready()
                plain, kept = split_kept(rows)
                with self._engine.begin() as conn:
                    new = _missing(conn, plain) if missing_only else plain
                    if new:
                        conn.execute(insert(predictions), new)
                    insert_kept(conn, kept)  # the images callers chose to keep, with their rows
                return True
            except (SQLAlchemyError, PokedexError) as exc:
                log.warning("prediction log insert failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(self.retry_delay * 2**attempt)
        return False

    def _replay(self) -> None:
        """Move the rows of journal segments left by dead processes into the database."""
        assert self.journal is not None
        for path, rows, bad in orphans(self.journal.folder):
            if bad:
                log.warning("%s: %d unreadable lines skipped (cut short by a crash)", path, bad)
            if rows and not self._write(rows, missing_only=True):
                log.error("%s: cannot replay %d rows now; kept for the next start", path, len(rows))
                return
            path.unlink(missing_ok=True)
            log.info("replayed %d prediction rows from %s", len(rows), path.name)


def _missing(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose id the table does not hold yet."""
    ids = [row["id"] for row in rows]
    present = set()
    for i in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[i : i + _IDS_PER_QUERY]
        present.update(
            conn.execute(select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars()
        )
    return [row for row in rows if row["id"] not in present]


def _resolve(futures: list[Future[bool] | None], value: bool) -> None:
    for future in futures:
        if future is not None:
            # a future its waiter cancelled has nobody left to tell
            with contextlib.suppress(InvalidStateError):
                future.set_result(value)
