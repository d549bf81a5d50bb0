"""Servers as local subprocesses, for the benchmarks and the tests: a free port, start and wait
until a URL answers 200, stop (SIGTERM, then SIGKILL), and nothing left behind: a server that
spawns processes of its own (LitServe's inference workers, Streamlit) runs in its own process
group, and whatever of that group outlives the server is killed with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from pokedex.errors import PokedexError

READY_TIMEOUT_S = 180.0  # generous: a loaded machine imports torch slowly


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0, sig: int = signal.SIGTERM) -> None:
    """``sig`` (SIGTERM: a clean shutdown), SIGKILL after ``timeout`` seconds; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = READY_TIMEOUT_S
) -> None:
    """Poll ``url`` until it answers 200; raise with the log's tail if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise PokedexError(f"server `{' '.join(map(str, proc.args))}` exited:\n{tail}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise PokedexError(f"server was not ready at {url} after {timeout:g} s (log: {log_path})")


@contextmanager
def server_process(
    command: list[str],
    ready_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    inherit_env: bool = True,
    timeout: float = READY_TIMEOUT_S,
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start ``command`` (output to ``log_path``), wait until ``ready_url`` answers 200; yield
    the process and its start-up seconds; stop it on the way out.

    ``env`` is added to this process's environment, or replaces it if ``inherit_env`` is off.
    """
    started = time.perf_counter()
    full_env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # its own process group: see stop_group
        )
    try:
        wait_ready(proc, ready_url, log_path, timeout)
        yield proc, time.perf_counter() - started
    finally:
        stop(proc)
        stop_group(proc.pid)


def stop_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGTERM the processes left in group ``pgid``, SIGKILL what remains after ``timeout`` s.

    A server's children can outlive it (a SIGTERM to LitServe's parent left its inference
    worker spinning on a core); the benchmark would then measure the next server beside it.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return  # the group is empty
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
