"""`fetch` from every kind of source (RELIABILITY.md §6 T3 download faults), all offline."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import pytest
from PIL import Image

import pokedex
from pokedex.data import fetch as fetch_module
from pokedex.data.fetch import STAMP, fetch
from pokedex.errors import PokedexError

Handler = Callable[[BaseHTTPRequestHandler], None]


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Relative name -> content of every file under ``root``, the stamp left out."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != STAMP
    }


def rgba_webp() -> bytes:
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    img.putpixel((5, 5), (10, 200, 30, 128))
    buf = io.BytesIO()
    img.save(buf, "WEBP", lossless=True)
    return buf.getvalue()


FILES = {
    "metadata.csv": b"label,image_path\npikachu,images/pikachu/0.webp\n",
    "images/pikachu/0.webp": rgba_webp(),
    "images/bulbasaur/0.webp": b"RIFF....WEBP" + bytes(2000),
}


@pytest.fixture
def good_zip(tmp_path: Path) -> Path:
    return make_zip(tmp_path / "pokemon.zip", FILES)


# ---------------------------------------------------------------- local sources


def test_local_zip(tmp_path: Path, good_zip: Path) -> None:
    digest = sha(good_zip.read_bytes())
    res = fetch(str(good_zip), tmp_path / "raw", sha256=digest.upper())
    assert res == fetch_module.FetchResult(
        tmp_path / "raw", digest, False, 3, sum(map(len, FILES.values()))
    )
    assert tree(tmp_path / "raw") == FILES  # the RGBA WebP included, byte for byte
    with Image.open(tmp_path / "raw" / "images" / "pikachu" / "0.webp") as img:
        assert img.mode == "RGBA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pokemon.zip", "raw"]


def test_second_fetch_is_skipped_and_rewrites_nothing(
    tmp_path: Path, good_zip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = fetch(str(good_zip), tmp_path / "raw")
    csv = tmp_path / "raw" / "metadata.csv"
    old = time.time() - 3600
    os.utime(csv, (old, old))  # any rewrite would move the mtime to now
    with caplog.at_level(logging.INFO, logger="pokedex.data.fetch"):
        second = fetch(good_zip.as_uri(), tmp_path / "raw", sha256=first.sha256)
    assert second.skipped
    assert (second.sha256, second.files, second.bytes) == (first.sha256, first.files, first.bytes)
    assert csv.stat().st_mtime == pytest.approx(old)
    assert "already fetched" in caplog.text


def test_edited_dest_or_new_source_is_fetched_again(tmp_path: Path, good_zip: Path) -> None:
    fetch(str(good_zip), tmp_path / "raw")
    (tmp_path / "raw" / "metadata.csv").write_bytes(b"edited")
    assert not fetch(str(good_zip), tmp_path / "raw").skipped
    assert tree(tmp_path / "raw") == FILES
    twin = tmp_path / "twin.zip"  # the same bytes from another source
    twin.write_bytes(good_zip.read_bytes())
    assert not fetch(str(twin), tmp_path / "raw").skipped
    other = make_zip(tmp_path / "other.zip", {"only.txt": b"new"})
    assert not fetch(str(other), tmp_path / "raw").skipped
    assert tree(tmp_path / "raw") == {"only.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.zip",
        "pokemon.zip",
        "raw",
        "twin.zip",
    ]


def test_local_sha_mismatch_names_both_hashes(tmp_path: Path, good_zip: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(PokedexError, match=f"expected {wrong}, got {sha(good_zip.read_bytes())}"):
        fetch(str(good_zip), tmp_path / "raw", sha256=wrong)
    assert not (tmp_path / "raw").exists()
    with pytest.raises(PokedexError, match="64 hexadecimal"):
        fetch(str(good_zip), tmp_path / "raw", sha256="abc")


def test_local_folder_is_copied_with_a_stable_hash(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name, data in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    res = fetch(str(src), tmp_path / "raw")
    assert (res.files, res.skipped) == (3, False)
    assert tree(tmp_path / "raw") == FILES
    again = fetch(f"{src}/", tmp_path / "copy2")
    assert again.sha256 == res.sha256  # independent of where it lands and of a trailing slash
    (src / "metadata.csv").write_bytes(b"changed")
    assert fetch(str(src), tmp_path / "raw").sha256 != res.sha256


def test_folder_with_a_symlink_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "leak").symlink_to("/etc/hostname")
    with pytest.raises(PokedexError, match="symbolic link"):
        fetch(str(src), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_destination_safety(tmp_path: Path, good_zip: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(PokedexError, match="did not put there"):
        fetch(str(good_zip), mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(PokedexError, match="overlap"):
        fetch(str(tmp_path), tmp_path / "raw")
    with pytest.raises(PokedexError, match="not found"):
        fetch(str(tmp_path / "missing.zip"), tmp_path / "raw")
    with pytest.raises(PokedexError, match="unsupported source"):
        fetch("s3://bucket/x.zip", tmp_path / "raw")


def test_unsafe_archive_leaves_dest_untouched(tmp_path: Path, good_zip: Path) -> None:
    fetch(str(good_zip), tmp_path / "raw")
    evil = make_zip(tmp_path / "evil.zip", {"ok.txt": b"1", "../escape.txt": b"2"})
    with pytest.raises(PokedexError, match=r"escape\.txt"):
        fetch(str(evil), tmp_path / "raw")
    assert tree(tmp_path / "raw") == FILES
    assert not (tmp_path / "escape.txt").exists()


# ---------------------------------------------------------------- optional backends


def test_missing_optional_backends_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # makes `import gcsfs` fail
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(PokedexError, match=r"pokedex\[gcs\]"):
        fetch("gs://bucket/pokemon.zip", tmp_path / "raw")
    with pytest.raises(PokedexError, match=r"pokedex\[kaggle\]"):
        fetch("kaggle://owner/pokemon", tmp_path / "raw")
    with pytest.raises(PokedexError, match="kaggle://owner/dataset"):
        fetch("kaggle://../../etc", tmp_path / "raw")


def test_gs_source_goes_through_fsspec(
    tmp_path: Path, good_zip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", types.ModuleType("gcsfs"))
    opened: list[str] = []

    def fake_open(url: str, mode: str) -> BinaryIO:
        opened.append(url)
        return open(good_zip, mode)  # fetch closes it, as it would close gcsfs's file

    monkeypatch.setattr(fetch_module.fsspec, "open", fake_open)
    fetch("gs://bucket/pokemon.zip", tmp_path / "raw", sha256=sha(good_zip.read_bytes()))
    assert opened == ["gs://bucket/pokemon.zip"]
    assert tree(tmp_path / "raw") == FILES
    assert (tmp_path / "raw.download" / "pokemon.zip").read_bytes() == good_zip.read_bytes()
    assert fetch("gs://bucket/pokemon.zip", tmp_path / "raw").skipped


def test_kaggle_source_copies_the_hub_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    (hub / "images").mkdir(parents=True)
    (hub / "images" / "a.webp").write_bytes(b"webp")
    handles: list[str] = []
    fake = types.ModuleType("kagglehub")
    fake.dataset_download = lambda handle: handles.append(handle) or str(hub)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    res = fetch("kaggle://owner/pokemon", tmp_path / "raw")
    assert (handles, res.files) == (["owner/pokemon"], 1)
    assert fetch("kaggle://owner/pokemon", tmp_path / "raw").skipped
    assert handles == ["owner/pokemon"]  # the rerun did not call the hub


# ---------------------------------------------------------------- http: T3 faults


@dataclass
class Server:
    url: str
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    release: threading.Event = field(default_factory=threading.Event)


def serve(body: bytes, *, cut: int | None = None, ctype: str = "application/zip") -> Handler:
    """Serve ``body`` with Range support; ``cut`` closes the connection after that many bytes."""

    def handle(req: BaseHTTPRequestHandler) -> None:
        start = 0
        if rng := req.headers.get("Range"):
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            req.send_response(206)
            req.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            req.send_response(200)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body) - start))
        req.end_headers()
        req.wfile.write(body[start:] if cut is None else body[start:cut])

    return handle


def redirect(location: str) -> Handler:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.end_headers()

    return handle


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Range")))
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
            else:
                route(self)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_http_download_then_skip_without_network(
    tmp_path: Path, good_zip: Path, server: Server
) -> None:
    body = good_zip.read_bytes()
    server.routes["/v1/pokemon.zip"] = serve(body)
    server.routes["/moved"] = redirect("/v1/pokemon.zip")  # same host: followed
    res = fetch(f"{server.url}/moved", tmp_path / "raw", sha256=sha(body))
    assert (res.sha256, res.files) == (sha(body), 3)
    assert tree(tmp_path / "raw") == FILES
    assert os.listdir(tmp_path / "raw.download") == ["moved"]
    hits = len(server.seen)
    assert fetch(f"{server.url}/moved", tmp_path / "raw", sha256=sha(body)).skipped
    assert len(server.seen) == hits


def test_flipped_byte_is_refused_and_good_copies_survive(
    tmp_path: Path, good_zip: Path, server: Server
) -> None:
    body = good_zip.read_bytes()
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0xFF
    server.routes["/a/pokemon.zip"] = serve(body)
    server.routes["/b/pokemon.zip"] = serve(bytes(flipped))
    fetch(f"{server.url}/a/pokemon.zip", tmp_path / "raw")  # no pin: the cache holds `body`
    pinned = sha(b"the release we pinned")
    with pytest.raises(PokedexError, match=f"expected {pinned}, got {sha(bytes(flipped))}"):
        fetch(f"{server.url}/b/pokemon.zip", tmp_path / "raw", sha256=pinned)
    cache = tmp_path / "raw.download"
    assert os.listdir(cache) == ["pokemon.zip"]  # the bad .part is gone
    assert (cache / "pokemon.zip").read_bytes() == body
    assert tree(tmp_path / "raw") == FILES


def test_truncated_body_then_rerun_resumes(tmp_path: Path, good_zip: Path, server: Server) -> None:
    body = good_zip.read_bytes()
    half = len(body) // 2
    url = f"{server.url}/pokemon.zip"
    server.routes["/pokemon.zip"] = serve(body, cut=half)
    with pytest.raises(PokedexError, match="interrupted"):
        fetch(url, tmp_path / "raw", sha256=sha(body))
    part = tmp_path / "raw.download" / "pokemon.zip.part"
    assert part.stat().st_size == half
    assert not (tmp_path / "raw.download" / "pokemon.zip").exists()
    assert not (tmp_path / "raw").exists()
    server.routes["/pokemon.zip"] = serve(body)
    fetch(url, tmp_path / "raw", sha256=sha(body))
    assert server.seen[-1] == ("/pokemon.zip", f"bytes={half}-")  # only the rest was sent
    assert tree(tmp_path / "raw") == FILES
    assert os.listdir(tmp_path / "raw.download") == ["pokemon.zip"]


def test_truncated_body_without_a_pin_restarts(
    tmp_path: Path, good_zip: Path, server: Server
) -> None:
    body = good_zip.read_bytes()
    server.routes["/pokemon.zip"] = serve(body, cut=len(body) // 2)
    with pytest.raises(PokedexError, match="interrupted"):
        fetch(f"{server.url}/pokemon.zip", tmp_path / "raw")
    server.routes["/pokemon.zip"] = serve(body)
    assert fetch(f"{server.url}/pokemon.zip", tmp_path / "raw").sha256 == sha(body)
    assert server.seen[-1] == ("/pokemon.zip", None)  # no pin to check a resume against


def test_corrupt_part_is_replaced_by_a_full_download(
    tmp_path: Path, good_zip: Path, server: Server
) -> None:
    body = good_zip.read_bytes()
    server.routes["/pokemon.zip"] = serve(body)
    (tmp_path / "raw.download").mkdir()
    garbage = b"PK\x03\x04garbage"  # a .part from some other file
    (tmp_path / "raw.download" / "pokemon.zip.part").write_bytes(garbage)
    fetch(f"{server.url}/pokemon.zip", tmp_path / "raw", sha256=sha(body))
    assert [r for _, r in server.seen] == [f"bytes={len(garbage)}-", None]
    assert tree(tmp_path / "raw") == FILES


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_killed_download_then_rerun(tmp_path: Path, server: Server) -> None:
    body = make_zip(tmp_path / "big.zip", {"a.bin": os.urandom(1 << 20)}).read_bytes()
    half = len(body) // 2

    def stall(req: BaseHTTPRequestHandler) -> None:
        serve(body, cut=half)(req)
        req.wfile.flush()
        server.release.wait(20)  # hold the connection open until the client is killed

    server.routes["/big.zip"] = stall
    url, dest = f"{server.url}/big.zip", tmp_path / "raw"
    code = f"from pokedex.data.fetch import fetch; fetch({url!r}, {str(dest)!r}, {sha(body)!r})"
    env = {**os.environ, "PYTHONPATH": str(Path(pokedex.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    part = tmp_path / "raw.download" / "big.zip.part"
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    kept = part.stat().st_size
    assert 0 < kept <= half
    assert not (tmp_path / "raw.download" / "big.zip").exists()
    assert not dest.exists()
    server.routes["/big.zip"] = serve(body)
    res = fetch(url, dest, sha256=sha(body))
    assert server.seen[-1] == ("/big.zip", f"bytes={kept}-")
    assert (res.files, (dest / "a.bin").stat().st_size) == (1, 1 << 20)


def test_html_error_page_is_refused(tmp_path: Path, server: Server) -> None:
    page = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    server.routes["/pokemon.zip"] = serve(page, ctype="text/html")
    with pytest.raises(PokedexError, match="did not return a zip or tar archive"):
        fetch(f"{server.url}/pokemon.zip", tmp_path / "raw")
    assert os.listdir(tmp_path / "raw.download") == []
    assert not (tmp_path / "raw").exists()


def test_redirect_to_another_host_is_refused(tmp_path: Path, server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    server.routes["/pokemon.zip"] = redirect(f"http://localhost:{port}/elsewhere.zip")
    with pytest.raises(PokedexError, match="another host"):
        fetch(f"{server.url}/pokemon.zip", tmp_path / "raw")
    assert [path for path, _ in server.seen] == ["/pokemon.zip"]  # never followed
    assert not (tmp_path / "raw").exists()


def test_http_error_status(tmp_path: Path, server: Server) -> None:
    with pytest.raises(PokedexError, match="HTTP 404"):
        fetch(f"{server.url}/missing.zip", tmp_path / "raw")
    assert not (tmp_path / "raw").exists()
