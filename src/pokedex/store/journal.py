"""The prediction log's journal: a row is safe once it is in a file, before it is in the database.

An answer must not outlive its log row (a crash after a 200 may not lose the prediction), but
waiting for the database commit put a thread hop and a transaction on every answer. Instead the
event loop appends the row as one JSON line to a journal file (one ``write``: the row is in the
kernel's hands and survives the process being killed) and answers; the writer thread then moves
rows to the database in batches as before. A journal is a folder of segment files, each owned
by the process writing it through an exclusive ``flock``; a segment is deleted once every row in
it is committed, and the current one is rotated past ``max_bytes``. At start-up, segments that
nobody holds (their process died) are replayed into the database, skipping rows already there,
then deleted.

Like SQLite's own WAL with ``synchronous=NORMAL``, this survives the process, not the machine
losing power: nothing here calls ``fsync``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
MAX_BYTES = 8 * 1024 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"a journal row cannot hold {type(value).__name__}")


def _revive(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$uuid" in obj:
            return uuid.UUID(obj["$uuid"])
        if "$datetime" in obj:
            return datetime.fromisoformat(obj["$datetime"])
    return obj


def encode_row(row: dict[str, Any]) -> bytes:
    """One journal line: the row as JSON, UUIDs and datetimes tagged so they come back typed."""
    return json.dumps(row, default=_default, separators=(",", ":")).encode() + b"\n"


def decode_rows(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The rows of a segment's bytes and how many lines could not be read (a line cut short by
    a kill mid-write is the usual one)."""
    rows, bad = [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line, object_hook=_revive))
        except ValueError:
            bad += 1
    return rows, bad


class Journal:
    """The segments this process writes, and how many of each one's rows await their commit."""

    def __init__(self, folder: str | Path, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # segment number -> rows not yet committed
        self._fds: dict[int, int] = {}
        self._current = -1
        self._size = 0
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _path(self, segment: int) -> Path:
        return self.folder / f"{self._prefix}-{segment:06d}{SUFFIX}"

    def _rotate(self) -> None:
        """Start a new segment (called with the lock held)."""
        self._current += 1
        path = self._path(self._current)
        # locked under a name recovery does not look at, then renamed: another worker's
        # start-up can never take a fresh segment for an orphan
        fresh = path.with_suffix(".new")
        fd = os.open(fresh, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours until we close it
        os.rename(fresh, path)
        self._fds[self._current] = fd
        self._pending[self._current] = 0
        self._size = 0
        self._release_drained()

    def append(self, row: dict[str, Any]) -> int:
        """Write ``row``; the segment it went to (pass it to :meth:`committed`). OSError when it
        cannot be written (disk full, folder gone): the caller must not count on the journal."""
        line = encode_row(row)
        with self._lock:
            if self._current < 0 or self._size >= self.max_bytes:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._rotate()
            if os.write(self._fds[self._current], line) != len(line):
                raise OSError(f"short write to the prediction journal in {self.folder}")
            self._size += len(line)
            self._pending[self._current] += 1
            return self._current

    def committed(self, segments: list[int]) -> None:
        """Rows from ``segments`` (one entry per row) are in the database now."""
        with self._lock:
            for segment in segments:
                self._pending[segment] -= 1
            self._release_drained()

    def _release_drained(self) -> None:
        """Delete the finished segments before the current one (called with the lock held)."""
        for segment in [s for s, n in self._pending.items() if n == 0 and s != self._current]:
            self._drop(segment)

    def _drop(self, segment: int) -> None:
        self._path(segment).unlink(missing_ok=True)
        os.close(self._fds.pop(segment))
        del self._pending[segment]

    def close(self) -> int:
        """Delete every segment whose rows are all committed; keep the others for the next
        start to replay. The number of rows kept that way."""
        with self._lock:
            kept = 0
            for segment in list(self._pending):
                if self._pending[segment] == 0:
                    self._drop(segment)
                else:
                    kept += self._pending[segment]
                    os.close(self._fds.pop(segment))  # unlocks it for the next start
            self._pending.clear()
            self._current = -1
            return kept


def orphans(folder: str | Path) -> Iterator[tuple[Path, list[dict[str, Any]], int]]:
    """Segments of ``folder`` that no live process holds: each one's path, rows and unreadable
    lines, locked while the caller replays it (the caller deletes it once its rows are in)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # another worker replayed it first
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process writes it
            if not path.exists():  # replayed and deleted between our open and our lock
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                rows, bad = decode_rows(f.read())
            yield path, rows, bad
        finally:
            os.close(fd)
