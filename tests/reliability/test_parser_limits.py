"""Body and parser limits against a real server (RELIABILITY.md T13; issue #10's 100 MB body).

Each attack runs while a thread probes /healthz: the event loop must keep answering, and the
server must refuse without buffering the body. The in-process versions of the body limit are
in tests/serving/test_limits.py.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import encode, sprite
from tests.figures import Figure
from tests.reliability.conftest import Server, env_number, percentile_ms, probing

MB = 1024 * 1024
CHUNK = 64 * 1024
SLOW_CONNECTIONS = 100
SLOWLORIS_S = env_number("POKEDEX_SLOWLORIS_S", 5)
MAX_RSS_GROWTH_MB = 50
MAX_SENT_MB = 30  # the 10 MB limit plus the kernel's socket buffers on both sides


@dataclass
class RawAnswer:
    """What the server said to a raw request, and how much of the body it let us send."""

    status: int | None  # None: the connection closed with no answer
    sent: int
    seconds: float


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_status(sock: socket.socket, timeout: float) -> int | None:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


def raw_post(url: str, head: bytes, body: Iterator[bytes], timeout: float = 120) -> RawAnswer:
    """Send ``head`` then ``body`` chunks until the server answers (or the body ends)."""
    start = time.perf_counter()
    sent = 0
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered already: stop sending, read it
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status = _read_status(sock, timeout)
    return RawAnswer(status, sent, time.perf_counter() - start)


def _head(url: str, headers: dict[str, str], path: str = "/v1/predict") -> bytes:
    host, port = _address(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_PART_HEAD = (
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="file"; filename="big.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


def _file_part(total: int) -> Iterator[bytes]:
    """``total`` bytes of a well-formed multipart file part (so only the size is wrong)."""
    yield _PART_HEAD
    for start in range(len(_PART_HEAD), total, CHUNK):
        yield bytes(min(CHUNK, total - start))


def _chunked(total: int) -> Iterator[bytes]:
    for piece in _file_part(total):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


MULTIPART = "multipart/form-data; boundary=xyz"


def _honest_100mb(url: str) -> RawAnswer:
    head = _head(url, {"Content-Type": MULTIPART, "Content-Length": str(100 * MB)})
    return raw_post(url, head, _file_part(100 * MB))


def _spoofed_length(url: str) -> RawAnswer:
    # claims 1 kB, sends 100 MB: the rest must be refused as garbage, never buffered
    head = _head(url, {"Content-Type": MULTIPART, "Content-Length": "1024"})
    return raw_post(url, head, _file_part(100 * MB))


def _chunked_100mb(url: str) -> RawAnswer:
    head = _head(url, {"Content-Type": MULTIPART, "Transfer-Encoding": "chunked"})
    return raw_post(url, head, _chunked(100 * MB))


def _one_byte_over(url: str) -> RawAnswer:
    limit = 10 * MB  # the default single-upload limit
    head = _head(url, {"Content-Type": MULTIPART, "Content-Length": str(limit + 1)})
    return raw_post(url, head, _file_part(limit + 1))


def _http(url: str, **kwargs: object) -> RawAnswer:
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as http:
        response = http.post("/v1/predict", **kwargs)  # type: ignore[arg-type]
    return RawAnswer(response.status_code, 0, time.perf_counter() - start)


PNG = encode(sprite(1), "PNG")
# CVE-2024-24762: a Content-Type whose options made python-multipart's regex backtrack for ages
REDOS_TYPE = 'application/x-www-form-urlencoded; !="' + "\\" * 4000

ATTACKS: dict[str, tuple[Callable[[str], RawAnswer], set[int | None]]] = {
    "body-one-byte-over": (_one_byte_over, {413}),
    "body-100mb": (_honest_100mb, {413}),
    "content-length-spoofed": (_spoofed_length, {400, 422}),
    "chunked-100mb": (_chunked_100mb, {413}),
    "10000-empty-fields": (
        lambda url: _http(url, files={"file": PNG}, data={f"f{i}": "" for i in range(10_000)}),
        {400},
    ),
    "2mb-text-field": (
        lambda url: _http(url, files={"file": PNG}, data={"x": "a" * 2 * MB}),
        {400},
    ),
    "content-type-redos": (
        lambda url: _http(url, content=b"file=x", headers={"Content-Type": REDOS_TYPE}),
        {400, 422},
    ),
    "urlencoded-100k-fields": (
        lambda url: _http(
            url,
            content=b"a=1&" * 100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        {400},
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_oversized_or_abusive_bodies_are_refused_while_health_answers(
    api: Server, attack: str, figure: Figure
) -> None:
    send, expected = ATTACKS[attack]
    with probing(api.url) as baseline:
        time.sleep(0.5)
    rss_start, fds_start = api.rss_mb(), api.open_files()
    with probing(api.url) as during:
        answer = send(api.url)
    rss_growth = api.rss_mb() - rss_start
    assert answer.status in expected, answer
    assert api.healthy()
    assert rss_growth < MAX_RSS_GROWTH_MB
    fds_end = api.open_files()
    assert fds_end <= fds_start + 2  # no temporary file or socket left open by the refusal
    # refused early: the limit plus what socket buffers hold, not the 100 MB offered
    assert answer.sent < MAX_SENT_MB * MB
    p99, base = percentile_ms(during, 99), percentile_ms(baseline, 99)
    assert p99 < 5 * base + 500, (p99, base)
    figure(
        "T13",
        f"{attack}: {answer.status} in {1000 * answer.seconds:.0f} ms after "
        f"{answer.sent / MB:.1f} MB sent; RSS {rss_growth:+.1f} MB; fds {fds_start}->{fds_end}; "
        f"/healthz p99 {p99:.0f} ms over {len(during)} probes (baseline {base:.0f} ms)",
    )


def test_slowloris_connections_do_not_block_the_server(api: Server, figure: Figure) -> None:
    """Many clients sending a request head one byte at a time: others are still served."""
    head = _head(api.url, {"Content-Type": MULTIPART, "Content-Length": "100"})
    sockets = [socket.create_connection(_address(api.url)) for _ in range(SLOW_CONNECTIONS)]
    sent = 0
    try:
        with probing(api.url) as during:
            deadline = time.monotonic() + SLOWLORIS_S
            while time.monotonic() < deadline and sent < len(head):
                for sock in sockets:
                    sock.sendall(head[sent : sent + 1])
                sent += 1
                time.sleep(0.05)
            with httpx.Client(base_url=api.url, timeout=60) as http:
                predicted = http.post("/v1/predict", files={"file": PNG}).status_code
    finally:
        for sock in sockets:
            sock.close()
    assert predicted == 200
    assert api.healthy()
    p99 = percentile_ms(during, 99)
    assert max(during) < 60, "a health probe failed during the attack"
    figure(
        "T13",
        f"slowloris: {SLOW_CONNECTIONS} connections x {sent} header bytes over "
        f"{SLOWLORIS_S:g} s; a prediction still got 200; /healthz p99 {p99:.0f} ms "
        f"over {len(during)} probes",
    )
