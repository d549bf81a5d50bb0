"""The repository's locustfile, headless, against a real `serve()` process on 127.0.0.1."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import serving_process

LOCUSTFILE = Path(__file__).parents[2] / "locustfile.py"


@pytest.fixture
def server(model_root: Path, tmp_path: Path) -> Iterator[str]:
    """Base URL of a served tiny bundle; stopped after the test."""
    db = tmp_path / "served.db"
    with serving_process(
        model=str(model_root / "v1"), prediction_log_url=f"sqlite:///{db}", threads=1,
        log_level="warning",
    ) as (_, base):  # fmt: skip
        yield base


@pytest.mark.slow
def test_locust_users_run_headless_without_failures(
    server: str, tmp_path: Path, images: dict[str, bytes]
) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for fmt, data in images.items():
        (folder / f"sprite.{fmt}").write_bytes(data)
    prefix = tmp_path / "locust"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--users", "8", "--spawn-rate", "8", "--run-time", "10s", "--host", server]
    command += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    env = {**os.environ, "POKEDEX_LOCUST_IMAGES": str(folder)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]  # locust exits 1 on any failure
    with open(f"{prefix}_stats.csv", newline="") as fh:
        stats = {row["Name"]: row for row in csv.DictReader(fh)}
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert int(stats["/v1/predict"]["Request Count"]) > 0
    assert int(stats["/v1/species/[name]"]["Request Count"]) > 0  # names from the answers
