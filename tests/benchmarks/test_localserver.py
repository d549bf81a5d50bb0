"""pokedex.benchmarks.localserver: how benchmarks and tests start, wait for and stop servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pokedex.benchmarks.localserver import free_port, server_process, stop
from pokedex.errors import PokedexError

SERVE = "import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')"  # noqa: E501


def test_a_server_is_yielded_once_it_answers_and_is_stopped_afterwards(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", SERVE, str(port)]
    url = f"http://127.0.0.1:{port}/"
    with server_process(command, url, tmp_path / "log", timeout=60) as (proc, ready_s):
        assert proc.poll() is None
        assert 0 < ready_s < 60
    assert proc.returncode is not None  # stopped and reaped


@pytest.mark.parametrize(
    ("code", "timeout", "says"),
    [
        ("import sys; print('no model here'); sys.exit(3)", 60, "no model here"),  # its log
        ("import time; time.sleep(60)", 0.5, "not ready"),
    ],
    ids=["dies-at-start-up", "never-ready"],
)
def test_a_server_that_never_answers_raises_saying_why(
    tmp_path: Path, code: str, timeout: float, says: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    command = [sys.executable, "-c", code]
    with (
        pytest.raises(PokedexError, match=says),
        server_process(command, url, tmp_path / "log", timeout=timeout),
    ):
        pass


def test_stop_kills_what_ignores_sigterm() -> None:
    ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"  # noqa: E501
    proc = subprocess.Popen([sys.executable, "-c", ignore], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline()  # the handler is in place
    stop(proc, timeout=0.5)
    assert proc.returncode == -9


def test_what_a_server_spawned_is_stopped_with_it(tmp_path: Path) -> None:
    """A child that survives its parent's SIGTERM (as LitServe's worker did) is still stopped."""
    port = free_port()
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        + SERVE.replace("int(sys.argv[1])", str(port))
    )
    command = [sys.executable, "-c", code]
    with server_process(command, f"http://127.0.0.1:{port}/", tmp_path / "log", timeout=60):
        child = int(pid_file.read_text())
        os.kill(child, 0)  # alive while the server is
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
