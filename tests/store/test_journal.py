"""The prediction journal: rows safe before their commit, replayed after a crash, then deleted."""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pokedex.store.journal import Journal, decode_rows, encode_row, orphans
from pokedex.store.predlog import PredictionLog, default_journal
from tests.store.test_predlog import _row


def _ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT request_id FROM predictions")}


def test_a_journal_line_brings_back_uuids_and_times_and_a_torn_line_is_counted() -> None:
    row = {"id": uuid.uuid4(), "ts": datetime.now(UTC), "head": [0.5, 1.0], "image": None}
    line = encode_row(row)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    rows, bad = decode_rows(line + line + line[: len(line) // 2])  # killed mid-write
    assert rows == [row, row]
    assert bad == 1
    with pytest.raises(TypeError):
        encode_row({"image": b"\x89PNG"})  # pictures are never journaled


def test_segments_rotate_and_go_once_their_rows_are_committed(tmp_path: Path) -> None:
    one_row = len(encode_row(_row(0))) + 10
    journal = Journal(tmp_path / "j", max_bytes=one_row)  # every row starts a new segment
    segments = [journal.append(_row(i)) for i in range(3)]
    assert segments == [0, 1, 2]
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 3
    journal.committed([0, 1])
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 1  # the current one stays
    assert list(orphans(tmp_path / "j")) == []  # held by this live journal: not an orphan
    assert journal.close() == 1  # segment 2's row is not committed: kept for the next start
    [(path, rows, bad)] = list(orphans(tmp_path / "j"))
    assert [r["request_id"] for r in rows] == ["req-2"]
    assert bad == 0
    assert path.exists()  # the replayer deletes it once its rows are in
    assert path.stat().st_size == one_row  # allocated whole: a full disk fails at rotation
    with pytest.raises(OSError, match="does not fit"):
        Journal(tmp_path / "k", max_bytes=10).append(_row(0))


def test_journaled_rows_are_safe_before_any_commit_and_replayed_after_a_crash(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    folder = default_journal(f"sqlite:///{db}")
    assert folder == Path(f"{db}.journal")
    crashed = PredictionLog(f"sqlite:///{db}", journal=folder)  # never started: a stalled writer
    futures = [Future[bool]() for _ in range(5)]
    for i, future in enumerate(futures):
        assert crashed.record(_row(i), future)
    assert [f.result(timeout=0) for f in futures] == [True] * 5  # safe without a commit
    assert crashed.journal is not None
    crashed.journal.close()  # what the kernel does to a killed process's files
    assert not db.exists()

    # one row made it to the database before the crash: the replay must not write it twice
    survivor = _row(0)
    first = PredictionLog(f"sqlite:///{db}")
    first.start()
    first.record(survivor)
    first.close()
    journaled, _ = decode_rows(b"".join(p.read_bytes() for p in folder.glob("*.jsonl")))
    row_id = next(r["id"] for r in journaled if r["request_id"] == "req-0")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE predictions SET id = ? WHERE request_id = 'req-0'", (row_id.hex,))

    restarted = PredictionLog(f"sqlite:///{db}", journal=folder)
    restarted.start()
    restarted.record(_row(99))
    restarted.close()
    assert _ids(db) == {f"req-{i}" for i in (*range(5), 99)}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (6,)
    assert list(folder.glob("*")) == []  # replayed and committed: nothing left behind


def test_only_file_backed_sqlite_gets_a_journal_by_default() -> None:
    assert default_journal("sqlite:///data/p.db") == Path("data/p.db.journal")
    assert default_journal("sqlite://") is None
    assert default_journal("sqlite:///:memory:") is None
    assert default_journal("postgresql+psycopg://u:p@db/predictions") is None
    assert default_journal("not a url") is None
