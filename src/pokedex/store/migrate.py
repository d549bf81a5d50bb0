"""Schema migrations of the prediction store (Alembic, revisions in ``store/migrations``).

:func:`upgrade` is what `pokedex db upgrade` and the API (before its first write) run. It
migrates inside one transaction that holds the database's write lock (SQLite's ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock), so several API workers starting together migrate once
and a failed step leaves the schema as it was. A database written before migrations existed
holds only ``predictions``: it is adopted (stamped at revision 0001, the columns an older API
did not write added as empty) and then upgraded, with every row kept.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from pokedex.errors import PokedexError
from pokedex.store.predlog import make_engine, predictions

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema of the API before migrations: predictions alone
_PG_LOCK = 0x706F6B65  # "poke": the advisory lock key migrations take on PostgreSQL


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision (None: empty or unversioned) and the newest."""

    current: str | None
    head: str
    adopted: bool = False  # a pre-migration database was stamped by this call


def head() -> str:
    """The newest revision this package ships."""
    with _quiet():
        revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has never been migrated."""
    with _quiet(), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> SchemaState:
    """Migrate to ``revision`` (adopting a pre-migration database first); PokedexError if the
    database cannot be reached or a step fails (nothing of that step is kept)."""
    adopted = False
    before = None
    try:
        with _quiet(), engine.begin() as conn:
            _lock(conn)
            adopted = _adopt(conn)
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(_config(conn), revision)
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot migrate the prediction store: {exc}") from exc
    state = SchemaState(current=current(engine), head=head(), adopted=adopted)
    if state.current != before:
        log.info("migrated the prediction store from %s to %s", before or "empty", state.current)
    return state


def downgrade(engine: Engine, revision: str) -> SchemaState:
    """Migrate down to ``revision`` (``base`` drops every table, and the data with them)."""
    try:
        with _quiet(), engine.begin() as conn:
            _lock(conn)
            command.downgrade(_config(conn), revision)
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot migrate the prediction store: {exc}") from exc
    return SchemaState(current=current(engine), head=head())


def upgrade_url(url: str, revision: str = "head") -> SchemaState:
    """:func:`upgrade` on the database at ``url`` (an SQLAlchemy URL)."""
    engine = make_engine(url)
    try:
        return upgrade(engine, revision)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Alembic's step-by-step INFO lines off: the functions here log one line per migration."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _lock(conn: Connection) -> None:
    # SQLite: the engine's BEGIN IMMEDIATE already holds the write lock
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")


def _adopt(conn: Connection) -> bool:
    """Stamp a database the API created before migrations; True if it did."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables or predictions.name not in tables:
        return False
    have = {c["name"] for c in inspect(conn).get_columns(predictions.name)}
    operations = Operations(MigrationContext.configure(conn))
    for column in predictions.columns:
        if column.name in have:
            continue
        if not column.nullable:
            raise PokedexError(
                f"cannot adopt the prediction store: its predictions table lacks the required "
                f"column {column.name!r}"
            )
        # an API older than the baseline did not write this column: add it, empty
        operations.add_column(predictions.name, Column(column.name, column.type))
    command.stamp(_config(conn), BASELINE)
    log.info("adopted a prediction store created before migrations (stamped %s)", BASELINE)
    return True
