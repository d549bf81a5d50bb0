"""Safe extraction (RELIABILITY.md §6 T1 unsafe members, T2 bombs), on archives made here."""

from __future__ import annotations

import io
import stat
import tarfile
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pokedex.data import archive
from pokedex.data.archive import archive_format, safe_extract, safe_member_path
from pokedex.errors import PokedexError

MB = 1024 * 1024
Entry = tuple[str, bytes] | tuple[str, bytes, int]


def make_zip(path: Path, entries: list[Entry], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write entries (name, data[, unix mode]) exactly as named, duplicates included."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", method) as zf:
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names we want
        for name, data, *mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            if mode:
                info.create_system = 3  # Unix, so the mode in external_attr is meaningful
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)
    return path


def make_tar(path: Path, entries: list[tuple[str, bytes | None, bytes]], mode: str = "w") -> Path:
    """Write tar entries (name, data or None for a folder, tar type); links point at ../x."""
    with tarfile.open(path, mode) as tf:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "../x" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            info.size = len(data) if data is not None else 0
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def zip_of_zeros(path: Path, size: int) -> Path:
    """One deflated entry of ``size`` zero bytes, written in chunks to stay small in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        for _ in range(size // MB):
            fh.write(bytes(MB))
    return path


def snapshot(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar line in /proc/self/io")


needs_proc_io = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc")


def _nul_name(path: Path) -> Path:
    # ZipInfo cuts names at NUL, so patch the stored name bytes after writing (same length).
    make_zip(path, [("okQZQZQZ.txt", b"data")], zipfile.ZIP_STORED)
    path.write_bytes(path.read_bytes().replace(b"QZQZQZ", b"\x00ZQZQZ"))
    return path


# (id, builder, text the error must contain): T1's crafted archives plus the tar link types.
UNSAFE: list[tuple[str, Callable[[Path], Path], str]] = [
    ("zip-dotdot", lambda p: make_zip(p, [("ok.txt", b"1"), ("../../x", b"2")]), "'../../x'"),
    ("zip-absolute", lambda p: make_zip(p, [("/abs/x", b"1")]), "'/abs/x'"),
    ("zip-inner-dotdot", lambda p: make_zip(p, [("a/../../x", b"1")]), "'a/../../x'"),
    ("zip-backslash", lambda p: make_zip(p, [("..\\x", b"1")]), "backslash"),
    ("zip-drive", lambda p: make_zip(p, [("C:/x", b"1")]), "'C:/x'"),
    (
        "zip-symlink",
        lambda p: make_zip(
            p, [("link", b"../../outside", stat.S_IFLNK | 0o777), ("link/evil.txt", b"pwned")]
        ),
        "symbolic link",
    ),
    ("zip-fifo", lambda p: make_zip(p, [("pipe", b"", stat.S_IFIFO | 0o644)]), "'pipe'"),
    ("zip-duplicate", lambda p: make_zip(p, [("a.txt", b"1"), ("a.txt", b"2")]), "twice"),
    ("zip-file-and-folder", lambda p: make_zip(p, [("a", b"1"), ("a/b", b"2")]), "both"),
    ("zip-nul", _nul_name, "NUL"),
    ("zip-10kB-name", lambda p: make_zip(p, [("n" * 10_000, b"1")]), "10000 characters"),
    ("zip-long-component", lambda p: make_zip(p, [("d/" + "c" * 300, b"1")]), "component"),
    ("tar-dotdot", lambda p: make_tar(p, [("../x", b"1", tarfile.REGTYPE)]), "'../x'"),
    ("tar-absolute", lambda p: make_tar(p, [("/abs/x", b"1", tarfile.REGTYPE)]), "'/abs/x'"),
    ("tar-symlink", lambda p: make_tar(p, [("link", None, tarfile.SYMTYPE)]), "symbolic link"),
    ("tar-hardlink", lambda p: make_tar(p, [("hard", None, tarfile.LNKTYPE)]), "hard link"),
    ("tar-device", lambda p: make_tar(p, [("dev", None, tarfile.CHRTYPE)]), "device"),
    ("tar-10kB-name", lambda p: make_tar(p, [("n" * 10_000, b"1", tarfile.REGTYPE)]), "10000"),
]


@pytest.mark.parametrize(("builder", "needle"), [c[1:] for c in UNSAFE], ids=[c[0] for c in UNSAFE])
def test_unsafe_member_is_rejected_and_nothing_is_written(
    tmp_path: Path, builder: Callable[[Path], Path], needle: str
) -> None:
    src = builder(tmp_path / "evil.archive")
    target = tmp_path / "a" / "b" / "target"
    target.parent.mkdir(parents=True)
    before = snapshot(tmp_path)
    with pytest.raises(PokedexError, match="archive member") as err:
        safe_extract(src, target)
    assert needle in str(err.value)
    assert not target.exists()
    assert snapshot(tmp_path) == before  # nothing outside the target, no temporary folder left


def test_every_member_is_checked_before_the_first_byte_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(archive, "_copy_member", lambda *a: calls.append(a[2]) or 0)
    src = make_zip(tmp_path / "x.zip", [("good.txt", b"fine"), ("../late.txt", b"evil")])
    with pytest.raises(PokedexError, match=r"late\.txt"):
        safe_extract(src, tmp_path / "out")
    assert calls == []


@pytest.mark.parametrize(
    "name", ["a.webp", "a/b/c.webp", "./a/b", "a//b", "ünïcode/ピカチュウ.webp", "a..b", "..a"]
)
def test_safe_member_path_accepts_plain_names(name: str) -> None:
    path = safe_member_path(name)
    assert not path.is_absolute()
    assert ".." not in path.parts


def test_member_count_cap(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "many.zip", [(f"e{i}", b"") for i in range(30_001)])
    start = time.perf_counter()
    with pytest.raises(PokedexError, match="30001 members, over the cap of 30000"):
        safe_extract(src, tmp_path / "out", max_members=30_000)
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "out").exists()
    tar = make_tar(tmp_path / "many.tar", [(f"e{i}", b"", tarfile.REGTYPE) for i in range(101)])
    with pytest.raises(PokedexError, match="more than 100 members"):
        safe_extract(tar, tmp_path / "out", max_members=100)


@needs_proc_io
def test_zip_bomb_is_refused_before_writing(tmp_path: Path) -> None:
    src = zip_of_zeros(tmp_path / "bomb.zip", 50 * MB)
    assert src.stat().st_size < MB  # ~50 MB of zeros deflates to ~50 kB
    start, wrote = time.perf_counter(), written_bytes()
    with pytest.raises(PokedexError, match="over the cap"):
        safe_extract(src, tmp_path / "out", max_total_bytes=10 * MB)
    assert written_bytes() - wrote < MB
    assert time.perf_counter() - start < 10
    assert snapshot(tmp_path) == {Path("bomb.zip")}


@needs_proc_io
def test_zip_whose_header_lies_about_file_size(tmp_path: Path) -> None:
    src = zip_of_zeros(tmp_path / "liar.zip", 20 * MB)
    data = bytearray(src.read_bytes())
    info = zipfile.ZipFile(src).infolist()[0]
    assert info.file_size == 20 * MB
    central = data.rfind(b"PK\x01\x02")
    # Claim 100 bytes in the local header (offset 22) and the central directory (offset 24).
    data[info.header_offset + 22 : info.header_offset + 26] = (100).to_bytes(4, "little")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    src.write_bytes(bytes(data))
    wrote = written_bytes()
    with pytest.raises(PokedexError, match=r"zeros\.bin"):
        safe_extract(src, tmp_path / "out", max_total_bytes=5 * MB)
    assert written_bytes() - wrote < 5 * MB + MB
    assert snapshot(tmp_path) == {Path("liar.zip")}


def test_byte_counter_stops_at_the_cap_whatever_the_headers_say(tmp_path: Path) -> None:
    # A member stream that yields more than any header promised (finite, so that a broken cap
    # fails this test instead of filling the disk).
    stream = io.BytesIO(bytes(8 * MB))
    out = tmp_path / "member.bin"
    with pytest.raises(PokedexError, match=r"member\.bin"):
        archive._copy_member(stream, out, "member.bin", MB, 3 * MB)
    assert out.stat().st_size <= 2 * MB  # the running total already held 1 MB


def test_tar_gz_bomb_stops_at_the_header(tmp_path: Path) -> None:
    src = tmp_path / "bomb.tar.gz"
    with tarfile.open(src, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 50 * MB
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    start = time.perf_counter()
    with pytest.raises(PokedexError, match=r"zeros\.bin"):
        safe_extract(src, tmp_path / "out", max_total_bytes=10 * MB)
    assert time.perf_counter() - start < 10
    assert snapshot(tmp_path) == {Path("bomb.tar.gz")}


def test_extraction_streams_in_bounded_memory(tmp_path: Path) -> None:
    src = zip_of_zeros(tmp_path / "big.zip", 30 * MB)
    tracemalloc.start()
    try:
        files, nbytes = safe_extract(src, tmp_path / "out", max_total_bytes=40 * MB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (files, nbytes) == (1, 30 * MB)
    assert peak < 8 * MB


def test_nested_zip_is_extracted_as_a_plain_file(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", [("secret.txt", b"inside")]).read_bytes()
    src = make_zip(tmp_path / "outer.zip", [("data/inner.zip", inner)])
    assert safe_extract(src, tmp_path / "out") == (1, len(inner))
    assert (tmp_path / "out" / "data" / "inner.zip").read_bytes() == inner
    assert not list((tmp_path / "out").rglob("secret.txt"))


def test_zip_with_folders_extracts_exactly(tmp_path: Path) -> None:
    entries: list[Entry] = [
        ("images/", b""),
        ("images/pikachu/1.webp", b"\x00\x01" * 500),
        ("images/empty/", b""),
        ("metadata.csv", b"label,image_path\n"),
    ]
    src = make_zip(tmp_path / "ok.zip", entries)
    assert archive_format(src) == "zip"
    assert safe_extract(src, tmp_path / "out") == (2, 1000 + 17)
    assert (tmp_path / "out" / "images" / "pikachu" / "1.webp").read_bytes() == b"\x00\x01" * 500
    assert (tmp_path / "out" / "images" / "empty").is_dir()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_made_from_dot_extracts(tmp_path: Path, mode: str) -> None:
    entries = [(".", None, tarfile.DIRTYPE), ("./a", None, tarfile.DIRTYPE)]
    entries.append(("./a/b.txt", b"hello", tarfile.REGTYPE))
    src = make_tar(tmp_path / "ok.tar", entries, mode)
    assert archive_format(src) == "tar"
    assert safe_extract(src, tmp_path / "out") == (1, 5)
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello"


def test_failure_leaves_an_existing_target_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "out"
    safe_extract(make_zip(tmp_path / "v1.zip", [("v1.txt", b"one")]), target)
    with pytest.raises(PokedexError):
        safe_extract(make_zip(tmp_path / "bad.zip", [("v2.txt", b"2"), ("/etc/x", b"")]), target)
    assert snapshot(target) == {Path("v1.txt")}
    safe_extract(make_zip(tmp_path / "v2.zip", [("v2.txt", b"two")]), target)
    assert snapshot(target) == {Path("v2.txt")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "out", "v1.zip", "v2.zip"]


@pytest.mark.parametrize("body", [b"<!DOCTYPE html><html>Not found</html>", b"", b"PK\x01\x02"])
def test_not_an_archive(tmp_path: Path, body: bytes) -> None:
    src = tmp_path / "page.zip"
    src.write_bytes(body)
    assert archive_format(src) is None
    with pytest.raises(PokedexError, match="not a zip or tar"):
        safe_extract(src, tmp_path / "out")


def test_truncated_zip_is_a_clean_error(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "cut.zip", [("a.bin", bytes(range(256)) * 100)])
    src.write_bytes(src.read_bytes()[:-40])  # the central directory is gone
    with pytest.raises(PokedexError, match="not a readable zip"):
        safe_extract(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
