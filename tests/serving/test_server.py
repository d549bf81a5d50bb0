"""`serve()` as a real process: JSON logs with request ids, SIGTERM drains and flushes the log."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from pokedex.serving.server import tune_malloc
from tests.serving.conftest import serving_process


def test_serve_logs_json_and_shuts_down_cleanly(
    model_root: Path, tmp_path: Path, png: bytes
) -> None:
    db = tmp_path / "served.db"
    with serving_process(
        subprocess.PIPE, model=str(model_root / "v1"), prediction_log_url=f"sqlite:///{db}",
        threads=1,
    ) as (proc, base):  # fmt: skip
        with httpx.Client(base_url=base) as http:
            for i in range(5):
                headers = {"X-Request-ID": f"served-{i}"}
                response = http.post("/v1/predict", files={"file": png}, headers=headers)
                assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown: dying "by SIGTERM" is the clean end
    assert proc.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # all JSON
    access = [line for line in lines if line["logger"] == "pokedex.access"]
    assert {line.get("request_id") for line in access} >= {f"served-{i}" for i in range(5)}
    assert all(line["route"] in ("/readyz", "/v1/predict") for line in access)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (5,)


def test_serve_runs_numpy_blas_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import pokedex.serving.server as server

    seen: list[int] = []

    def fake_run(app: object, **kwargs: object) -> None:
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    monkeypatch.setattr(server.uvicorn, "run", fake_run)
    with threadpool_limits(limits=None):  # restores the test process's limits on the way out
        server.serve(model="unused-until-startup")
    assert seen
    assert set(seen) == {1}


_PROBE = """
import ctypes, json, os, re, sys, tempfile, threading
import numpy as np
from pokedex.serving.server import tune_malloc
done = tune_malloc(int(sys.argv[1]), int(sys.argv[2]))
start = threading.Barrier(8)
def allocate():
    start.wait()
    for _ in range(2000):
        np.ones(256)  # 2 KB: from the thread's heap, below malloc's mmap threshold
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryFile() as f:
    stream = ctypes.c_void_p(libc.fdopen(os.dup(f.fileno()), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    f.seek(0)
    heaps = len(re.findall("<heap nr=", f.read().decode()))
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in "arena ordblks smblks hblks hblkhd".split()]
    _fields_ += [(name, ctypes.c_size_t) for name in "usmblks fsmblks uordblks fordblks k".split()]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(8 << 20))  # an upload's body comes and goes: glibc raises its threshold
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
mapped = libc.mallinfo2().hblks == before + 1  # a block of its own, unmapped when freed
print(json.dumps({"done": done, "heaps": heaps, "mapped": mapped}))
"""


def _probe(arenas: int, mmap_threshold: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(arenas), str(mmap_threshold)], env=env,
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")
def test_malloc_tuning_caps_the_heaps_and_maps_large_blocks() -> None:
    tuned = _probe(2, 256 * 1024)
    assert tuned["done"] == {"arenas": True, "mmap_threshold": True}
    assert tuned["heaps"] <= 2  # the main heap and one for all other threads
    assert tuned["mapped"]  # 1 MB after an 8 MB free: still mapped, so its free unmaps it
    default = _probe(0, 0)  # the same process without the tuning: what it prevents
    assert default["done"] == {"arenas": False, "mmap_threshold": False}
    assert default["heaps"] > 2
    assert not default["mapped"]


_TRIM_PROBE = """
import ctypes, json, sys, time
from pokedex.serving.server import trim_malloc_every
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
blocks = [libc.malloc(1024) for _ in range(64 * 1024)]  # 64 MB of small blocks, from the heap
for block in blocks[:-1]:
    libc.free(block)  # all but the last: it keeps the heap's top, so free() returns nothing
time.sleep(0.3)
held = resident_mb()
started = trim_malloc_every(float(sys.argv[1])) is not None
time.sleep(0.3)
print(json.dumps({"started": started, "held": held, "after": resident_mb()}))
"""


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")
def test_malloc_trimming_gives_a_bursts_free_heap_back() -> None:
    def probe(seconds: float) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-c", _TRIM_PROBE, str(seconds)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        result: dict[str, float] = json.loads(out.stdout)
        return result

    trimmed = probe(0.05)
    assert trimmed["started"]
    assert trimmed["held"] - trimmed["after"] > 48  # of the 64 MB freed, in the trimmer's 0.3 s
    kept = probe(0)  # without it, the same free memory stays resident
    assert not kept["started"]
    assert kept["held"] - kept["after"] < 4


def test_malloc_settings_in_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tune_malloc(2, 256 * 1024) == {"arenas": False, "mmap_threshold": False}
