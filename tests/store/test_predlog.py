"""The prediction log: batched background writes, counted drops, nothing lost on close."""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pokedex.store.predlog import PredictionLog


def _row(i: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "request_id": f"req-{i}",
        "ts": datetime.now(UTC),
        "model_name": "m",
        "model_version": "v",
        "variant": "fp32",
        "top1": "pikachu",
        "probability": 0.9,
        "known": True,
        "latency_ms": 1.0,
        "embedding_head": [0.0, 1.0],
    }


def test_every_queued_row_is_written_on_close(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    log = PredictionLog(f"sqlite:///{db}", batch_size=7)
    log.start()
    assert all(log.record(_row(i)) for i in range(100))
    log.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (100,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        ids = conn.execute("SELECT count(DISTINCT request_id) FROM predictions").fetchone()
    assert ids == (100,)


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    drops: list[tuple[str, int]] = []
    log = PredictionLog(
        f"sqlite:///{tmp_path / 'p.db'}", max_queue=2, on_drop=lambda r, n: drops.append((r, n))
    )
    # not started: nothing drains the queue, like a database that has stalled
    assert log.record(_row(0))
    assert log.record(_row(1))
    assert log.record(_row(2)) is False
    assert drops == [("queue_full", 1)]


def test_a_broken_database_counts_lost_rows(tmp_path: Path) -> None:
    drops: list[tuple[str, int]] = []
    folder = tmp_path / "a-folder"
    folder.mkdir()  # SQLite cannot open a folder as a database
    log = PredictionLog(
        f"sqlite:///{folder}", on_drop=lambda r, n: drops.append((r, n)), retry_delay=0.01
    )
    log.start()
    log.record(_row(0))
    log.record(_row(1))
    log.close()
    assert sum(n for reason, n in drops if reason == "db_error") == 2


def test_commit_futures_say_whether_each_row_was_written(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    log.start()
    written = [Future() for _ in range(3)]
    for i, committed in enumerate(written):
        log.record(_row(i), committed)
    assert [f.result(timeout=30) for f in written] == [True, True, True]
    with sqlite3.connect(tmp_path / "p.db") as conn:  # committed means readable by others now
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (3,)
    log.close()

    full = PredictionLog(f"sqlite:///{tmp_path / 'q.db'}", max_queue=1)
    first, second = Future(), Future()
    full.record(_row(0), first)
    full.record(_row(1), second)  # not started: the queue stays full
    assert second.result(timeout=0) is False
    assert not first.done()


def test_commit_futures_turn_false_when_the_database_fails(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    log = PredictionLog(f"sqlite:///{folder}", retry_delay=0.01)
    log.start()
    committed = Future()
    log.record(_row(0), committed)
    assert committed.result(timeout=30) is False
    log.close()
