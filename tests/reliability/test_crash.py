"""Crash safety: kill -9 and SIGTERM at bad moments (issue #10; RELIABILITY.md T17, T18, T21).

- `pokedex data prepare` killed while it writes: its output folder is whole or absent.
- the API killed while it answers and logs: the SQLite log stays intact, and every
  prediction the client got a 200 for is in it.
- the API sent SIGTERM under load: in-flight requests finish, the log is flushed, exit < 25 s.
Training's kill -9 and resume is tests/jobs/test_train.py::
test_resume_after_kill_matches_an_uninterrupted_run.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from pokedex.serving.server import SHUTDOWN_GRACE_S
from tests.conftest import MakeRaw, encode, sprite
from tests.figures import Figure
from tests.reliability.conftest import POKEDEX, env_number, start_server

KILLS = int(env_number("POKEDEX_CRASH_KILLS", 2))
LOAD_S = env_number("POKEDEX_CRASH_LOAD_S", 2)
CLIENTS = 4
MIN_ANSWERS = 20  # predictions answered before the clock of a load phase starts
PNG = encode(sprite(1), "PNG")


def _prepare(raw: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [POKEDEX, "data", "prepare", "--raw", str(raw), "--out", str(out), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _temp_folders(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def _wait_for_write(proc: subprocess.Popen[bytes], out: Path) -> float:
    """Block until ``proc`` starts writing its temporary output folder (or ends); the time."""
    start = time.perf_counter()
    while proc.poll() is None and not _temp_folders(out):
        time.sleep(0.002)
    return time.perf_counter() - start


def _run_watching_writes(raw: Path, out: Path) -> tuple[float, float]:
    """A complete run; (seconds before its temporary folder appeared, seconds it existed)."""
    proc = _prepare(raw, out)
    before = _wait_for_write(proc, out)
    start = time.perf_counter()
    while proc.poll() is None and _temp_folders(out):
        time.sleep(0.001)
    writing = time.perf_counter() - start
    assert proc.wait() == 0
    return before, writing


def _whole(out: Path, reference: Path) -> bool:
    """True when ``out`` has every file of ``reference`` and they read back the same."""
    files = {p.relative_to(out) for p in out.rglob("*")}
    if files != {p.relative_to(reference) for p in reference.rglob("*")}:
        return False
    if (out / "manifest.csv").read_bytes() != (reference / "manifest.csv").read_bytes():
        return False
    json.loads((out / "summary.json").read_text())
    for npy in reference.glob("*.npy"):
        if not np.array_equal(np.load(out / npy.name), np.load(npy)):
            return False
    return True


def test_kill_9_during_data_prepare_never_leaves_a_torn_output(
    make_raw: MakeRaw, tmp_path: Path, figure: Figure
) -> None:
    raw = make_raw(species=4, per_species=6)
    reference = tmp_path / "reference"
    before_write, writing = _run_watching_writes(raw.raw, reference)
    out = tmp_path / "processed"
    rng = random.Random(0)
    outcomes: Counter[str] = Counter()
    for k in range(KILLS):
        shutil.rmtree(out, ignore_errors=True)
        if k % 4 >= 2:  # half the kills replace an earlier good output
            shutil.copytree(reference, out)
        proc = _prepare(raw.raw, out)
        if k % 2:  # odd kills land while the output is written, even ones anywhere
            _wait_for_write(proc, out)
            time.sleep(rng.uniform(0, writing))
        else:
            time.sleep(rng.uniform(0, before_write + writing))
        if proc.poll() is not None:
            outcomes["finished first"] += 1
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not out.exists():
            outcomes["absent"] += 1
        else:
            assert _whole(out, reference), f"kill {k} left a torn output"
            outcomes["whole"] += 1
    assert _prepare(raw.raw, out).wait() == 0
    assert _whole(out, reference)
    orphans = _temp_folders(out)
    figure(
        "crash",
        f"data prepare: {KILLS} x kill -9 (half timed inside the {1000 * writing:.0f} ms "
        f"write): {dict(outcomes)}, torn 0; rerun identical; {len(orphans)} orphan "
        "temporary folders left beside the output",
    )


def _hammer(url: str, stop: threading.Event, prefix: str, results: list[tuple[str, str]]) -> None:
    """Post predictions until told to stop; record (request id, outcome) for each."""
    with httpx.Client(base_url=url, timeout=60) as http:
        i = 0
        while not stop.is_set():
            rid = f"{prefix}-{i}"
            i += 1
            try:
                status = http.post(
                    "/v1/predict", files={"file": PNG}, headers={"X-Request-ID": rid}
                ).status_code
                results.append((rid, str(status)))
            except httpx.HTTPError as exc:
                results.append((rid, type(exc).__name__))
                if stop.is_set() or isinstance(exc, httpx.ConnectError):
                    return


def _under_load(url: str, seconds: float) -> tuple[threading.Event, list, list[threading.Thread]]:
    stop, results = threading.Event(), []
    threads = [
        threading.Thread(target=_hammer, args=(url, stop, f"c{k}", results), daemon=True)
        for k in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120  # a busy box may take a while to answer the first ones
    while sum(outcome == "200" for _, outcome in results) < MIN_ANSWERS:
        assert time.monotonic() < deadline, f"no steady load: {results[-3:]}"
        time.sleep(0.01)
    time.sleep(seconds)
    return stop, results, threads


def _logged_ids(db: Path) -> tuple[str, set[str]]:
    with sqlite3.connect(db) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {row[0] for row in conn.execute("SELECT request_id FROM predictions")}
    return integrity, ids


def test_kill_9_under_load_loses_no_acknowledged_prediction(
    tmp_path: Path, model_dir: Path, figure: Figure
) -> None:
    server = start_server(tmp_path / "api", model_dir / "v1", threads=1)
    stop, results, threads = _under_load(server.url, LOAD_S)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(60)
    acknowledged = {rid for rid, outcome in results if outcome == "200"}
    assert acknowledged
    integrity, at_kill = _logged_ids(server.db)
    assert integrity == "ok"
    # answered rows not yet committed wait in the journal beside the database
    journal = Path(f"{server.db}.journal")
    assert list(journal.glob("*.jsonl")), "the killed server left no journal"

    restarted = start_server(server.folder, model_dir / "v1", db=server.db, threads=1)
    try:
        response = httpx.post(
            f"{restarted.url}/v1/predict", files={"file": PNG}, headers={"X-Request-ID": "after"}
        )
        assert response.status_code == 200
    finally:
        restarted.stop()
    assert restarted.rows("request_id = ?", "after") == 1
    integrity, logged = _logged_ids(server.db)
    lost = acknowledged - logged
    assert integrity == "ok"
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged predictions not logged"
    assert logged <= {rid for rid, _ in results} | {"after"}  # no row for a request never sent
    assert restarted.rows() == len(logged)  # the replay wrote none twice
    assert list(journal.glob("*.jsonl")) == []  # replayed, committed, deleted
    outcomes = Counter(outcome for _, outcome in results)
    figure(
        "crash",
        f"API kill -9 under {CLIENTS} clients: {len(acknowledged)} acknowledged, "
        f"{len(acknowledged - at_kill)} of them only in the journal at the kill and replayed at "
        f"restart, {len(lost)} lost, integrity {integrity}; answers {dict(outcomes)}; restarted "
        "on the same log and ready again",
    )
    figure("T17", f"restart after kill -9: ready again {restarted.ready_s:.1f} s after spawn")


def test_sigterm_under_load_drains_and_flushes(
    tmp_path: Path, model_dir: Path, figure: Figure
) -> None:
    server = start_server(tmp_path / "api", model_dir / "v1", threads=1)
    stop, results, threads = _under_load(server.url, LOAD_S)
    start = time.perf_counter()
    rc = server.stop(signal.SIGTERM, timeout=SHUTDOWN_GRACE_S + 15)
    exit_s = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join(60)
    assert rc in (0, -signal.SIGTERM), server.log.read_text()[-2000:]
    assert exit_s < SHUTDOWN_GRACE_S
    outcomes = Counter(outcome for _, outcome in results)
    assert not [o for o in outcomes if o.isdigit() and o not in ("200", "503")], outcomes
    ok = {rid for rid, outcome in results if outcome == "200"}
    integrity, logged = _logged_ids(server.db)
    assert integrity == "ok"
    assert logged == ok
    figure(
        "T18",
        f"SIGTERM under {CLIENTS} clients: exit in {exit_s:.1f} s (limit {SHUTDOWN_GRACE_S} s); "
        f"answers {dict(outcomes)}; 200s {len(ok)} == log rows {len(logged)}",
    )
