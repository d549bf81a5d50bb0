"""Migrations of the prediction store: up to head and down to base, the baseline equal to the
table the API used to create, adoption of a database created before migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from pokedex.errors import PokedexError
from pokedex.store import migrate
from pokedex.store.predlog import make_engine, metadata, predictions
from tests.store.test_predlog import _row as predlog_row

FEEDBACK_TABLES = {"feedback", "kept_images", "prediction_images"}


def _engine(tmp_path: Path, name: str = "p.db") -> Engine:
    return make_engine(f"sqlite:///{tmp_path / name}")


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _schema(engine: Engine, table: str) -> dict[str, Any]:
    found = inspect(engine)
    columns = {
        c["name"]: (str(c["type"]), c["nullable"], c.get("primary_key"))
        for c in found.get_columns(table)
    }
    indexes = {
        (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
    }
    return {
        "columns": columns,
        "indexes": indexes,
        "pk": found.get_pk_constraint(table)["constrained_columns"],
    }


def _row(**values: Any) -> dict[str, Any]:
    return {**predlog_row(0), **values}


def test_upgrade_to_head_and_downgrade_to_base(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    state = migrate.upgrade(engine)
    assert state.current == state.head == migrate.head() == "0002"
    assert _tables(engine) == {"predictions", *FEEDBACK_TABLES}
    assert migrate.upgrade(engine).current == "0002"  # a second run changes nothing

    assert migrate.downgrade(engine, "0001").current == "0001"
    assert _tables(engine) == {"predictions"}
    assert migrate.upgrade(engine).current == "0002"  # and back up again
    assert migrate.downgrade(engine, "base").current is None
    assert _tables(engine) == set()


def test_the_baseline_is_the_table_the_api_created_before_migrations(tmp_path: Path) -> None:
    migrated, created = _engine(tmp_path, "a.db"), _engine(tmp_path, "b.db")
    migrate.upgrade(migrated, migrate.BASELINE)
    metadata.create_all(created)
    assert _schema(migrated, "predictions") == _schema(created, "predictions")


def test_a_downgrade_of_the_feedback_keeps_the_predictions(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(predictions.insert(), [_row(), _row()])
    migrate.downgrade(engine, migrate.BASELINE)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 2


def test_a_database_from_before_migrations_is_adopted_without_loss(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    metadata.create_all(engine)  # what PredictionLog did before migrations
    rows = [_row(top1=f"s{i}", image=b"\x00\x01") for i in range(5)]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    state = migrate.upgrade(engine)
    assert state.adopted
    assert state.current == "0002"
    with engine.connect() as conn:
        kept = conn.execute(predictions.select().order_by(predictions.c.top1)).mappings().all()
    assert [r["top1"] for r in kept] == [f"s{i}" for i in range(5)]
    assert {r["id"] for r in kept} == {r["id"] for r in rows}
    assert all(r["image"] == b"\x00\x01" for r in kept)
    assert migrate.upgrade(engine).adopted is False  # stamped once


def test_an_older_log_gets_the_columns_it_lacked_empty(tmp_path: Path) -> None:
    # an API older than the baseline wrote no colourfulness or sharpness
    db = tmp_path / "old.db"
    engine = _engine(tmp_path, "old.db")
    metadata.create_all(engine)
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE predictions DROP COLUMN colourfulness")
        conn.execute("ALTER TABLE predictions DROP COLUMN sharpness")
        conn.execute(
            "INSERT INTO predictions (id, request_id, ts, model_name, model_version, variant, "
            "top1, probability, known, latency_ms) VALUES "
            "(?, 'r', '2026-01-01 00:00:00', 'm', 'v', 'fp32', 'eevee', 0.5, 1, 2.0)",
            ("0" * 31 + "1",),
        )
    engine = _engine(tmp_path, "old.db")
    assert migrate.upgrade(engine).adopted
    with engine.connect() as conn:
        row = conn.execute(text("SELECT top1, colourfulness, sharpness FROM predictions")).one()
    assert tuple(row) == ("eevee", None, None)


def test_a_log_missing_a_required_column_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE predictions (id CHAR(32) PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO predictions VALUES ('x', 'kept')")
    engine = _engine(tmp_path, "odd.db")
    with pytest.raises(PokedexError, match="request_id"):
        migrate.upgrade(engine)
    assert migrate.current(engine) is None
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT note FROM predictions").fetchall() == [("kept",)]


def test_workers_migrating_at_once_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade_url(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert migrate.current(make_engine(url)) == "0002"


def test_an_unreachable_database_is_a_clean_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(PokedexError, match="cannot migrate"):
        migrate.upgrade_url(f"sqlite:///{folder}")


def test_the_db_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pokedex.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    up = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert up.exit_code == 0, up.output
    assert "revision 0002 (newest 0002)" in up.output
    assert "revision 0002" in runner.invoke(app, ["db", "current", "--db", url]).output
    down = runner.invoke(app, ["db", "downgrade", "base", "--db", url])
    assert "revision base" in down.output
    folder = tmp_path / "a-folder"
    folder.mkdir()
    bad = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{folder}"])
    assert bad.exit_code == 1
    assert "cannot migrate" in bad.output
