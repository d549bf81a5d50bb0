"""The store on PostgreSQL, as the compose stack runs it: migrations up and down, adoption, a
race for one verdict, concurrent migrations. A throwaway cluster in tmp (skipped without the
PostgreSQL server binaries)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from pokedex.benchmarks.localserver import free_port
from pokedex.store import migrate
from pokedex.store.feedback import DuplicateVerdictError, FeedbackStore
from pokedex.store.ids import new_prediction_id
from pokedex.store.images import clean_image
from pokedex.store.predlog import make_engine, metadata, predictions
from tests.conftest import encode, sprite

pytest.importorskip("psycopg", reason="the postgres extra is not installed")
INITDB = shutil.which("initdb")
pytestmark = pytest.mark.skipif(INITDB is None, reason="no PostgreSQL server binaries (initdb)")


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the system's postgres user
    return ["runuser", "-u", owner, "--", *args] if owner else args


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A base URL (no database) of a PostgreSQL cluster on 127.0.0.1, removed afterwards."""
    owner = None
    # not pytest's tmp_path: its root-only parent folder would keep the postgres user out
    folder = Path(tempfile.mkdtemp(prefix="pokedex-pg-"))
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run the server")
        owner = "postgres"
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", free_port()
    done = subprocess.run(
        _as_owner([str(INITDB), "-D", str(data), "-A", "trust", "-U", "pokedex"], owner),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pg_ctl = str(Path(str(INITDB)).with_name("pg_ctl"))
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(_as_owner(start, owner), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://pokedex@127.0.0.1:{port}"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_owner(stop, owner), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def url(server: str) -> str:
    """A fresh, empty database on the cluster."""
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = make_engine(f"{server}/postgres")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{server}/{name}"


def _row(**values: Any) -> dict[str, Any]:
    return {
        "id": new_prediction_id(), "request_id": "r", "ts": datetime.now(UTC),
        "model_name": "m", "model_version": "v", "variant": "fp32", "top1": "pikachu",
        "probability": 0.9, "known": True, "latency_ms": 1.0, "embedding_head": [0.5], **values,
    }  # fmt: skip


def test_up_and_down_on_postgresql(url: str) -> None:
    engine = make_engine(url)
    assert migrate.upgrade(engine).current == "0002"
    tables = set(inspect(engine).get_table_names())
    assert {"predictions", "feedback", "kept_images", "prediction_images"} <= tables
    assert migrate.downgrade(engine, "base").current is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert migrate.upgrade(engine).current == "0002"
    engine.dispose()


def test_a_pre_migration_store_is_adopted_on_postgresql(url: str) -> None:
    engine = make_engine(url)
    metadata.create_all(engine)
    rows = [_row(top1=f"s{i}") for i in range(3)]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    assert migrate.upgrade(engine).adopted
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 3
    engine.dispose()


def test_workers_migrating_together_and_racing_for_one_verdict(url: str) -> None:
    with ThreadPoolExecutor(4) as pool:  # four workers starting at once
        states = list(pool.map(lambda _: migrate.upgrade_url(url), range(4)))
    assert {s.current for s in states} == {"0002"}
    row = _row()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(predictions.insert(), [row])
    engine.dispose()

    stores = [FeedbackStore(url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def send(store: FeedbackStore) -> None:
        barrier.wait()
        try:
            store.record(row["id"], "species", "eevee")
            outcomes.append("recorded")
        except DuplicateVerdictError:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=send, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["duplicate"] * 5 + ["recorded"]
    for store in stores:
        store.close()


def test_kept_images_are_deleted_everywhere_on_postgresql(url: str) -> None:
    from concurrent.futures import Future

    from pokedex.store.images import KEPT_KEY
    from pokedex.store.predlog import PredictionLog

    kept = clean_image(
        encode(sprite(3), "PNG"), "PNG", max_side=64, max_bytes=10**6, max_pixels=10**7
    )
    log = PredictionLog(url, schema=migrate.upgrade)
    log.start()
    rows = [_row(**{KEPT_KEY: kept, "image": b"raw"}), _row(**{KEPT_KEY: kept, "image": None})]
    done = [Future(), Future()]
    for row, future in zip(rows, done, strict=True):
        log.record(row, future)
    assert all(f.result(timeout=60) for f in done)
    log.close()
    store = FeedbackStore(url)
    gone = store.delete_image(kept.sha256)
    assert (gone.kept_images, gone.links, gone.logged_images) == (1, 2, 1)
    store.close()
