"""The prediction log's journal: a row is safe once it is in a file, before it is in the database.

An answer must not outlive its log row (a crash after a 200 may not lose the prediction), but
waiting for the database commit put a thread hop and a transaction on every answer. Instead the
event loop copies the row, as one JSON line, into a journal segment mapped into memory
(``MAP_SHARED``: the bytes are in the kernel's page cache at once and survive the process being
killed) and answers; the writer thread then moves rows to the database in batches as before.
A copy into a mapping is not a system call, so the event loop never lets go of the GIL for it:
a ``write`` per answer did, and each one could wait a whole switch interval (5 ms) to get the
GIL back from the decoding threads (measured: it made answers slower than waiting for the
commit).

A journal is a folder of segment files of ``max_bytes`` each, allocated up front (a full disk
shows at rotation, never as a fault mid-copy), each owned by the process writing it through an
exclusive ``flock``; a segment is deleted once every row in it is committed. At start-up,
segments that nobody holds (their process died) are replayed into the database, skipping rows
already there, then deleted.

Like SQLite's own WAL with ``synchronous=NORMAL``, this survives the process, not the machine
losing power: nothing here calls ``fsync``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import mmap
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
MAX_BYTES = 1024 * 1024  # about 1,400 rows; a mapped segment counts in the resident memory


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
        if not line.strip(b"\0 \t\r"):  # the unused, zero-filled end of a segment
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
        self._files: dict[int, tuple[int, mmap.mmap]] = {}  # segment -> (fd, mapping)
        self._current = -1
        self._offset = 0
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _path(self, segment: int) -> Path:
        return self.folder / f"{self._prefix}-{segment:06d}{SUFFIX}"

    def _rotate(self) -> None:
        """Start a new segment (called with the lock held)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(self._current + 1)
        # locked under a name recovery does not look at, then renamed: another worker's
        # start-up can never take a fresh segment for an orphan
        fresh = path.with_suffix(".new")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours until we close it
            _allocate(fd, self.max_bytes)
            mapping = mmap.mmap(fd, self.max_bytes)
        except BaseException:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            raise
        os.rename(fresh, path)
        self._current += 1
        self._files[self._current] = (fd, mapping)
        self._pending[self._current] = 0
        self._offset = 0
        self._release_drained()

    def append(self, row: dict[str, Any]) -> int:
        """Copy ``row`` into the journal; the segment it went to (pass it to :meth:`committed`).
        OSError when it cannot be kept (a full disk at rotation, a row larger than a segment):
        the caller must not count on the journal for that row."""
        line = encode_row(row)
        if len(line) > self.max_bytes:
            raise OSError(f"a {len(line)}-byte row does not fit a journal segment")
        with self._lock:
            if self._current < 0 or self._offset + len(line) > self.max_bytes:
                self._rotate()
            _, mapping = self._files[self._current]
            mapping[self._offset : self._offset + len(line)] = line
            self._offset += len(line)
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
            self._path(segment).unlink(missing_ok=True)
            self._close(segment)

    def _close(self, segment: int) -> None:
        fd, mapping = self._files.pop(segment)
        mapping.close()
        os.close(fd)  # unlocks it
        del self._pending[segment]

    def close(self) -> int:
        """Delete every segment whose rows are all committed; keep the others for the next
        start to replay. The number of rows kept that way."""
        with self._lock:
            kept = 0
            for segment in list(self._pending):
                if self._pending[segment] == 0:
                    self._path(segment).unlink(missing_ok=True)
                else:
                    kept += self._pending[segment]
                self._close(segment)
            self._current = -1
            return kept


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of real disk blocks now: a write into a mapping of a sparse
    file on a full disk would kill the process (SIGBUS) instead of raising."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        zeros = bytes(1024 * 1024)  # a filesystem without fallocate: write the zeros
        for offset in range(0, size, len(zeros)):
            os.pwrite(fd, zeros[: size - offset], offset)


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
