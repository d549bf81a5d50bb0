"""Atomic file writes: an output either appears whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

# A write in progress lives beside its target as ``.{name}.XXXXXXXX.tmp``: ``tempfile`` fills in
# the eight random characters, and remove_stale_temps recognises exactly these names.
_RANDOM = r"[a-z0-9_]{8}"


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


_TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``target`` only if the block succeeds.

    Works for files and folders. The temporary path lives in the same folder, so the final
    ``os.replace`` is atomic on POSIX; on failure it is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(_TEMP_SUFFIX, _temp_prefix(target), target.parent))
    tmp.rmdir()  # the caller decides whether it becomes a file or a folder
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``target`` only once the block succeeds, fsynced
    (data, then the folder's entry), so neither a kill nor a power cut leaves a torn file."""
    target = Path(target)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
    fsync_folder(target.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a kill needs no more than the rename)."""
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a folder: best effort
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete what ``atomic_path(target)`` leaves behind when its process is killed.

    That is its temporary sibling (see ``_RANDOM``), file or folder, and ``.{name}.old``
    once ``target`` exists again (while it is missing, ``.old`` is the only copy). Nothing
    else in the folder is touched. Call it when no other writer of ``target`` is running.
    """
    target = Path(target)
    temp = re.compile(re.escape(_temp_prefix(target)) + _RANDOM + re.escape(_TEMP_SUFFIX))
    old = f".{target.name}.old"
    if not target.parent.is_dir():
        return []
    removed: list[Path] = []
    for path in sorted(target.parent.iterdir()):
        if not (temp.fullmatch(path.name) or (path.name == old and target.exists())):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically and durably (see :func:`atomic_file`)."""
    with atomic_file(target) as fh:
        fh.write(data)


def write_json_atomic(target: Path, obj: Any) -> None:
    """Write ``obj`` as stable, indented JSON atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes_atomic(target, text.encode("utf-8"))


def check_replaceable(out: Path, owned: Callable[[str], bool], what: str = "output folder") -> None:
    """Refuse to replace the folder ``out`` as a whole when it holds files its writer does not own.

    ``owned`` says which file names a previous run of the same writer leaves there.
    """
    from pokedex.errors import PokedexError

    if not out.exists():
        return
    if not out.is_dir():
        raise PokedexError(f"{what} {out} exists and is not a folder")
    foreign = sorted(p.name for p in out.iterdir() if not owned(p.name))
    if foreign:
        raise PokedexError(
            f"{what} {out} holds other files ({', '.join(foreign[:3])}) that would be "
            "deleted: choose an empty or new folder"
        )


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (hex)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_digests(folder: Path, digests: dict[str, str], *, missing: str, damaged: str) -> None:
    """Refuse, with one line naming the file, a folder in which a file of ``digests`` (name:
    SHA-256) is absent (``"{file} " + missing``) or differs (``"{file}: " + damaged``)."""
    from pokedex.errors import PokedexError

    for name, digest in digests.items():
        file = folder / name
        if not file.is_file():
            raise PokedexError(f"{file} {missing}")
        if sha256_file(file) != digest:
            raise PokedexError(f"{file}: {damaged}")
