"""`pokedex data fetch`: bring the raw dataset from anywhere into one verified local folder.

Downloads land in ``<dest>.download/<name>.part`` and are renamed only once fsynced and
verified; extraction goes to a temporary sibling that replaces ``dest`` atomically, stamped
with ``.fetch.json`` so that a rerun with the same source is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import NamedTuple
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import fsspec
import httpx

from pokedex.data.archive import MAX_MEMBERS, MAX_TOTAL_BYTES, archive_format, extract_into
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, sha256_file, write_json_atomic
from pokedex.logs import track

log = logging.getLogger(__name__)

STAMP = ".fetch.json"
CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KAGGLE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/versions/\d+)?$")


@dataclass(frozen=True)
class FetchResult:
    """What `fetch` put where, and whether it had anything to do."""

    dest: Path  # folder holding the extracted contents
    sha256: str  # of the archive, or of the folder's files for a folder source
    skipped: bool  # True when dest already held this exact source
    files: int  # regular files extracted or copied
    bytes: int  # their total size


class _Limits(NamedTuple):
    total_bytes: int
    members: int


def fetch(
    source: str,
    dest: Path,
    sha256: str | None = None,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
) -> FetchResult:
    """Copy or download ``source``, check it against ``sha256`` if given, and extract it safely.

    Sources: a local zip/tar or folder, ``file://``, ``http(s)://``, ``gs://`` (needs
    ``pokedex[gcs]``) and ``kaggle://owner/dataset`` (needs ``pokedex[kaggle]``). A rerun is a
    no-op when ``dest`` holds the same source: local sources are re-hashed to prove it, remote
    ones are trusted by their stamp (and pin) so that a rerun needs no network.
    """
    dest = Path(dest)
    if dest.is_symlink():  # a data folder linked to a bigger disk: replace the real one
        dest = dest.resolve()
    expected = None if sha256 is None else sha256.strip().lower()
    if expected is not None and not _SHA256.match(expected):
        raise PokedexError(f"--sha256 must be 64 hexadecimal characters, got {sha256!r}")
    if dest.exists() and not dest.is_dir():
        raise PokedexError(f"destination {dest} exists and is not a folder")
    if dest.is_dir() and not (dest / STAMP).is_file() and any(dest.iterdir()):
        # Replacing dest deletes it, so never take over a folder this command did not make.
        raise PokedexError(
            f"destination {dest} holds files that `pokedex data fetch` did not put there; "
            "move them away or choose another destination"
        )
    limits = _Limits(max_total_bytes, max_members)
    url = urlsplit(source)
    scheme = url.scheme.lower()
    if scheme in ("http", "https", "gs"):
        return _fetch_remote(source, dest, expected, limits)
    if scheme == "kaggle":
        return _fetch_kaggle(source, dest, expected, limits)
    if scheme == "file":
        if url.netloc not in ("", "localhost"):
            raise PokedexError(f"file:// URLs must point at this machine, got {source!r}")
        path = Path(url2pathname(url.path))
    elif len(scheme) <= 1:  # no scheme, or a Windows drive letter
        path = Path(source).expanduser()
    else:
        raise PokedexError(
            f"unsupported source {source!r}: use a local path, file://, http(s)://, gs:// "
            "or kaggle://owner/dataset"
        )
    source_id = str(path.resolve())  # so `x.zip`, `./x.zip` and `file:///.../x.zip` match
    if path.is_dir():
        return _fetch_folder(source_id, path, dest, expected, limits)
    if path.is_file():
        return _fetch_local_archive(source_id, path, dest, expected, limits)
    raise PokedexError(f"data source not found: {source}")


def _skip(dest: Path, source_id: str, digest: str | None) -> FetchResult | None:
    """Return the earlier result when ``dest`` already holds this source, else None."""
    try:
        stamp = json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stamp.get("source") != source_id or digest not in (None, stamp.get("sha256")):
        return None
    if _tree_size(dest) != (stamp.get("files"), stamp.get("bytes")):
        log.info("%s was changed since it was fetched; fetching it again", dest)
        return None
    log.info("already fetched %s into %s (sha256 %s)", source_id, dest, stamp["sha256"])
    return FetchResult(dest, stamp["sha256"], True, stamp["files"], stamp["bytes"])


def _write_stamp(folder: Path, source_id: str, digest: str, files: int, nbytes: int) -> None:
    if (folder / STAMP).exists():
        raise PokedexError(f"the source holds a top-level {STAMP}, a name pokedex reserves")
    stamp = {"source": source_id, "sha256": digest, "files": files, "bytes": nbytes}
    write_json_atomic(folder / STAMP, stamp)


def _refuse_overlap(src: Path, dest: Path) -> None:
    """Replacing ``dest`` must never delete the source it is made from."""
    s, d = src.resolve(), dest.resolve()
    if s == d or s.is_relative_to(d) or d.is_relative_to(s):
        raise PokedexError(f"source {src} and destination {dest} overlap; use separate folders")


def _verify(source: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected:
        raise PokedexError(f"sha256 mismatch for {source}: expected {expected}, got {actual}")


def _install_archive(
    archive: Path, source_id: str, digest: str, dest: Path, limits: _Limits
) -> FetchResult:
    """Extract into a temporary sibling (stamp included) that replaces ``dest`` on success."""
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        files, nbytes = extract_into(
            archive, tmp, max_total_bytes=limits.total_bytes, max_members=limits.members
        )
        _write_stamp(tmp, source_id, digest, files, nbytes)
    log.info("fetched %s into %s: %d files, %d bytes", source_id, dest, files, nbytes)
    return FetchResult(dest, digest, False, files, nbytes)


def _fetch_local_archive(
    source_id: str, path: Path, dest: Path, expected: str | None, limits: _Limits
) -> FetchResult:
    _refuse_overlap(path, dest)
    digest = sha256_file(path)
    _verify(source_id, expected, digest)
    if (done := _skip(dest, source_id, digest)) is not None:
        return done
    if archive_format(path) is None:
        raise PokedexError(f"{path} is not a zip or tar archive")
    return _install_archive(path, source_id, digest, dest, limits)


def _fetch_folder(
    source_id: str, src: Path, dest: Path, expected: str | None, limits: _Limits
) -> FetchResult:
    """Copy a folder's regular files; its hash covers every relative name and content."""
    _refuse_overlap(src, dest)
    listing = _list_folder(src, limits)
    hashes = {name: sha256_file(path) for name, path in listing}
    lines = "".join(f"{name}\0{hashes[name]}\n" for name, _ in listing)
    digest = hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest()
    _verify(source_id, expected, digest)
    if (done := _skip(dest, source_id, digest)) is not None:
        return done
    nbytes = 0
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        for name, path in track(listing, f"copy {src.name}", total=len(listing)):
            out = tmp.joinpath(*PurePosixPath(name).parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            copied = hashlib.sha256()
            with open(path, "rb") as fh_in, open(out, "xb") as fh_out:
                while chunk := fh_in.read(CHUNK):
                    copied.update(chunk)
                    fh_out.write(chunk)
                    nbytes += len(chunk)
            if copied.hexdigest() != hashes[name]:  # the copy must be what was hashed
                raise PokedexError(f"{path} changed while it was copied; run the command again")
        _write_stamp(tmp, source_id, digest, len(listing), nbytes)
    log.info("copied %s into %s: %d files, %d bytes", src, dest, len(listing), nbytes)
    return FetchResult(dest, digest, False, len(listing), nbytes)


def _list_folder(root: Path, limits: _Limits) -> list[tuple[str, Path]]:
    """List (posix relative name, path) of every regular file; refuse links and special files."""
    found: list[tuple[str, Path]] = []
    total = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    raise PokedexError(f"{path} is a symbolic link; only regular files are copied")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise PokedexError(f"{path} is not a regular file")
                name = path.relative_to(root).as_posix()
                if name == STAMP:  # a folder an earlier fetch made: its stamp is not data
                    continue
                total += entry.stat(follow_symlinks=False).st_size
                found.append((name, path))
                if len(found) > limits.members or total > limits.total_bytes:
                    raise PokedexError(f"{root} holds more than the caps allow: {limits}")
    return sorted(found)


def _fetch_kaggle(source: str, dest: Path, expected: str | None, limits: _Limits) -> FetchResult:
    handle = source.split("://", 1)[1].strip("/")
    if not _KAGGLE.match(handle):
        raise PokedexError(f"bad Kaggle source {source!r}: expected kaggle://owner/dataset")
    source_id = f"kaggle://{handle}"
    if (done := _skip(dest, source_id, expected)) is not None:
        return done
    kagglehub = _require("kagglehub", "kaggle", "kaggle://")
    try:
        local = Path(kagglehub.dataset_download(handle))
    except Exception as exc:  # the SDK's errors (auth, 404, network) vary by version
        raise PokedexError(f"Kaggle download of {handle} failed: {exc}") from exc
    if local.is_dir():
        return _fetch_folder(source_id, local, dest, expected, limits)
    return _fetch_local_archive(source_id, local, dest, expected, limits)


def _require(module: str, extra: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PokedexError(
            f"{what} sources need the optional package {module}: pip install 'pokedex[{extra}]'"
        ) from exc


def _fetch_remote(source: str, dest: Path, expected: str | None, limits: _Limits) -> FetchResult:
    if (done := _skip(dest, source, expected)) is not None:
        return done
    if source.startswith("gs://"):
        _require("gcsfs", "gcs", "gs://")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(unquote(urlsplit(source).path)).name)
    final = dest.with_name(dest.name + ".download") / (name.lstrip(".")[:100] or "archive")
    if expected is not None and final.is_file() and sha256_file(final) == expected:
        log.info("using the verified cached archive %s", final)
        digest = expected
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        digest = _download(source, final, expected, 2 * limits.total_bytes + CHUNK)
    return _install_archive(final, source, digest, dest, limits)


def _download(source: str, final: Path, expected: str | None, limit: int) -> str:
    """Download into ``final``'s .part, check it, then rename it to ``final``; return its hash.

    A .part left by a killed run is resumed only when a pinned hash can vouch for the result;
    if the resumed file hashes wrong it is dropped and downloaded once more from the start.
    """
    part = final.with_name(final.name + ".part")
    resume = expected is not None and not source.startswith("gs://")
    while True:
        if source.startswith("gs://"):
            resumed = False
            try:
                with fsspec.open(source, "rb") as src:
                    _write_chunks(iter(lambda: src.read(CHUNK), b""), part, "wb", 0, limit)
            except PokedexError:
                raise
            except Exception as exc:  # gcsfs and google-auth raise many unrelated types
                raise PokedexError(f"cannot read {source}: {exc}") from exc
        else:
            resumed = _http_to_part(source, part, resume, limit)
        if archive_format(part) is None:
            head = part.read_bytes()[:60]
            part.unlink()
            raise PokedexError(
                f"{source} did not return a zip or tar archive (it starts with {head!r}); "
                "the server may have sent an error page"
            )
        digest = sha256_file(part)
        if expected is None or digest == expected:
            os.replace(part, final)
            _fsync_dir(final.parent)
            return digest
        part.unlink()  # never resume from, nor keep, bytes that hashed wrong
        if not resumed:
            raise PokedexError(f"sha256 mismatch for {source}: expected {expected}, got {digest}")
        log.warning("the resumed download of %s failed verification; starting over", source)
        resume = False


def _http_to_part(url: str, part: Path, resume: bool, limit: int) -> bool:
    """GET ``url`` into ``part``, following same-host redirects only; True if it resumed."""
    offset = part.stat().st_size if resume and part.is_file() else 0
    # identity: the archive's own bytes, so that Range offsets and the hash refer to them
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    source = url
    try:
        with httpx.Client(follow_redirects=False, timeout=httpx.Timeout(30.0)) as client:
            for _ in range(MAX_REDIRECTS + 2):
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.is_redirect:
                        url = _same_host(url, urljoin(url, resp.headers["location"]))
                        continue
                    code, ranges = resp.status_code, resp.headers.get("content-range", "")
                    resumed = code == 206 and ranges.startswith(f"bytes {offset}-")
                    if offset and not resumed and code != 200:
                        offset = 0  # e.g. 416: the .part is of no use, ask for the whole file
                        headers.pop("Range")
                        continue
                    if code != 200 and not resumed:
                        raise PokedexError(f"download of {url} failed: HTTP {code}")
                    size = int(resp.headers.get("content-length") or 0)
                    if offset + size > limit:
                        raise PokedexError(f"{url} is {offset + size} bytes, over the limit")
                    log.info("downloading %s (%d MB)%s", url, size >> 20, " resumed" * resumed)
                    chunks = track(resp.iter_raw(), f"download {part.name[:-5]}")
                    _write_chunks(chunks, part, "ab" if resumed else "wb", offset, limit)
                    return resumed
    except httpx.HTTPError as exc:
        raise PokedexError(f"download of {source} was interrupted ({exc}); run it again") from exc
    raise PokedexError(f"too many redirects from {source}")


def _same_host(old: str, new: str) -> str:
    """Allow a redirect only to the same host (an http->https upgrade included)."""
    a, b = urlsplit(old), urlsplit(new)
    if b.scheme not in ("http", "https") or (a.scheme, b.scheme) == ("https", "http"):
        raise PokedexError(f"refused redirect from {old} to {new}: not http(s) or a downgrade")
    same_port = a.scheme != b.scheme or a.port == b.port
    if (a.hostname or "").lower() != (b.hostname or "").lower() or not same_port:
        raise PokedexError(f"refused redirect from {old} to another host: {new}")
    return new


def _write_chunks(chunks: Iterable[bytes], part: Path, mode: str, done: int, limit: int) -> None:
    """Append or write ``chunks`` to ``part`` and fsync it; refuse a body past ``limit``."""
    with open(part, mode) as fh:
        for chunk in chunks:
            done += len(chunk)
            if done > limit:  # an archive is never far larger than its contents
                fh.close()
                part.unlink()
                raise PokedexError(f"download is larger than the {limit}-byte limit; refused")
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable, not only the bytes it moved (best effort: Windows cannot)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tree_size(folder: Path) -> tuple[int, int]:
    """Count regular files and bytes under ``folder``, leaving out the stamp."""
    files = nbytes = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if path != folder / STAMP and path.is_file():
                files += 1
                nbytes += path.stat().st_size
    return files, nbytes
