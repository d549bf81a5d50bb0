"""Safe extraction of zip and tar archives: check every member first, then stream under caps.

Python's ``zipfile`` and ``tarfile`` leave the hard cases to the caller (traversal, links,
decompression bombs), so this module refuses anything that is not a plain file or folder with
a plain relative name, and counts the bytes it really writes instead of trusting headers.
"""

from __future__ import annotations

import logging
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pokedex.errors import PokedexError
from pokedex.io import atomic_path
from pokedex.logs import track

log = logging.getLogger(__name__)

# RELIABILITY.md section 5: the dataset unpacks to 151 MB in ~25,700 entries
MAX_TOTAL_BYTES = 400 * 1024**2
MAX_MEMBERS = 30_000
MAX_COMPONENT_BYTES = 255  # the limit of ext4, APFS and NTFS for one path component
MAX_NAME_BYTES = 4096  # Linux PATH_MAX
CHUNK = 1024 * 1024

_DRIVE = re.compile(r"^[A-Za-z]:")
_ROOT = PurePosixPath(".")
# What a damaged or hostile archive raises while it is read; all become one clean error.
_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError)


@dataclass(frozen=True)
class _Member:
    """One checked archive entry: its stored name, where it goes, and the handle to read it."""

    name: str
    path: PurePosixPath
    is_dir: bool
    ref: Any  # zipfile.ZipInfo or tarfile.TarInfo


def _show(name: str) -> str:
    """Quote a member name for an error message, shortened so a 10 kB name stays readable."""
    text = repr(name)
    return text if len(text) <= 120 else text[:100] + f"...' ({len(name)} characters)"


def archive_format(path: Path) -> str | None:
    """Return "zip" or "tar" from the file's first bytes, or None when it is neither."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a local header, or an empty zip
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):  # gzip, bzip2, xz: tar inside
        return "tar"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def safe_member_path(name: str) -> PurePosixPath:
    """Check one member name and return it as a relative path that cannot leave its folder."""
    if not name:
        raise PokedexError("archive member has an empty name")
    if "\x00" in name:
        raise PokedexError(f"archive member {_show(name)} has a NUL byte in its name")
    if "\\" in name:
        # Windows extractors treat a backslash as a separator, so `..\x` is a traversal there.
        raise PokedexError(f"archive member {_show(name)} has a backslash in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise PokedexError(f"archive member {_show(name)} has an absolute path")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise PokedexError(f"archive member {_show(name)} has a name over {MAX_NAME_BYTES} bytes")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    for part in parts:
        if part == "..":
            raise PokedexError(f"archive member {_show(name)} climbs out of its folder with '..'")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
            raise PokedexError(
                f"archive member {_show(name)} has a path component over "
                f"{MAX_COMPONENT_BYTES} bytes"
            )
    return PurePosixPath(*parts) if parts else _ROOT


def _zip_members(zf: zipfile.ZipFile, max_members: int, max_total_bytes: int) -> list[_Member]:
    """Check every zip entry's name, type and flags; nothing is decompressed yet."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise PokedexError(f"archive has {len(infos)} members, over the cap of {max_members}")
    declared = sum(info.file_size for info in infos)
    if declared > max_total_bytes:
        # A cheap early refusal only: the real guard counts decompressed bytes while writing.
        raise PokedexError(
            f"archive declares {declared} bytes, over the cap of {max_total_bytes} bytes"
        )
    members = []
    for info in infos:
        name = info.orig_filename  # zipfile cuts `filename` at a NUL; the original keeps it
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise PokedexError(f"archive member {_show(name)} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise PokedexError(f"archive member {_show(name)} is not a regular file or folder")
        if info.flag_bits & 0x1:
            raise PokedexError(f"archive member {_show(name)} is encrypted")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        members.append(_Member(name, safe_member_path(name), is_dir, info))
    return members


def _tar_kind(info: tarfile.TarInfo) -> str:
    """Name a tar entry's type for an error message."""
    if info.issym():
        return "symbolic link"
    if info.islnk():
        return "hard link"
    if info.ischr() or info.isblk():
        return "device file"
    if info.isfifo():
        return "named pipe"
    return f"entry of type {info.type!r}"


def _tar_members(tf: tarfile.TarFile, max_members: int, max_total_bytes: int) -> list[_Member]:
    """Read tar headers one by one, stopping at a cap before skipping over a huge member."""
    members: list[_Member] = []
    declared = 0
    while (info := tf.next()) is not None:
        if len(members) >= max_members:
            raise PokedexError(f"archive has more than {max_members} members (the cap)")
        if not (info.isreg() or info.isdir()):
            raise PokedexError(f"archive member {_show(info.name)} is a {_tar_kind(info)}")
        # Tar sizes are honest (the data must follow the header), so summing them here stops a
        # bomb before the next header read decompresses it.
        declared += info.size if info.isreg() else 0
        if declared > max_total_bytes:
            raise PokedexError(
                f"archive member {_show(info.name)} takes the archive over the cap of "
                f"{max_total_bytes} bytes"
            )
        members.append(_Member(info.name, safe_member_path(info.name), info.isdir(), info))
    return members


def _check_layout(members: list[_Member]) -> list[_Member]:
    """Refuse duplicate files and names that are both a file and a folder; drop root entries."""
    files: dict[PurePosixPath, str] = {}
    folders: set[PurePosixPath] = set()
    kept = []
    for member in members:
        if member.path == _ROOT:
            if not member.is_dir:
                raise PokedexError(f"archive member {_show(member.name)} is a file with no name")
            continue  # "./" in a tar made with `tar -C dir .`: the target folder itself
        if member.is_dir:
            folders.add(member.path)
        elif member.path in files:
            raise PokedexError(f"archive member {_show(member.name)} appears twice")
        else:
            files[member.path] = member.name
        folders.update(p for p in member.path.parents if p != _ROOT)
        kept.append(member)
    for path, name in files.items():
        if path in folders:
            raise PokedexError(f"archive member {_show(name)} is both a file and a folder")
    return kept


def _copy_member(src: IO[bytes], out: Path, name: str, written: int, cap: int) -> int:
    """Stream one member to ``out``; stop before the running total passes ``cap``."""
    count = 0
    with open(out, "xb") as fh:  # "x": never write through something already there
        while chunk := src.read(CHUNK):
            count += len(chunk)
            if written + count > cap:
                raise PokedexError(
                    f"archive member {_show(name)} takes the extracted size over the cap of "
                    f"{cap} bytes (a decompression bomb?)"
                )
            fh.write(chunk)
    return count


def _write_all(
    members: list[_Member],
    open_member: Callable[[Any], IO[bytes] | None],
    folder: Path,
    max_total_bytes: int,
    label: str,
) -> tuple[int, int]:
    """Create every checked member under ``folder``; return (files, bytes)."""
    root = folder.resolve()
    files = written = 0
    for member in track(members, f"extract {label}", total=len(members)):
        out = root.joinpath(*member.path.parts)
        if not out.resolve().is_relative_to(root):  # defence in depth: names are checked above
            raise PokedexError(f"archive member {_show(member.name)} resolves outside the target")
        try:
            if member.is_dir:
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            src = open_member(member.ref)
            if src is None:
                raise PokedexError(f"archive member {_show(member.name)} has no data")
            with src:
                written += _copy_member(src, out, member.name, written, max_total_bytes)
        except (*_READ_ERRORS, OSError) as exc:
            raise PokedexError(
                f"cannot extract archive member {_show(member.name)}: {exc}"
            ) from exc
        files += 1
    return files, written


def extract_into(
    archive: Path,
    folder: Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> tuple[int, int]:
    """Extract ``archive`` into the existing empty ``folder``; return (files, bytes).

    Every member is checked before the first byte is written. Not atomic by itself: use
    ``safe_extract`` or wrap it in ``pokedex.io.atomic_path``.
    """
    archive = Path(archive)
    fmt = archive_format(archive)
    if fmt is None:
        raise PokedexError(f"{archive} is not a zip or tar archive")
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                members = _check_layout(_zip_members(zf, max_members, max_total_bytes))
                return _write_all(members, zf.open, folder, max_total_bytes, archive.name)
        with tarfile.open(archive, mode="r:*") as tf:
            members = _check_layout(_tar_members(tf, max_members, max_total_bytes))
            return _write_all(members, tf.extractfile, folder, max_total_bytes, archive.name)
    except _READ_ERRORS as exc:
        raise PokedexError(f"{archive} is not a readable {fmt} archive: {exc}") from exc


def safe_extract(
    archive: Path,
    target: Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> tuple[int, int]:
    """Extract ``archive`` into ``target`` atomically; return (files, bytes).

    The work happens in a temporary sibling folder that replaces ``target`` only on success,
    so any failure leaves ``target`` as it was and no temporary files behind.
    """
    with atomic_path(Path(target)) as tmp:
        tmp.mkdir()
        files, nbytes = extract_into(
            archive, tmp, max_total_bytes=max_total_bytes, max_members=max_members
        )
    log.info("extracted %d files (%d bytes) from %s into %s", files, nbytes, archive, target)
    return files, nbytes
