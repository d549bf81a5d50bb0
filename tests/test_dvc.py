"""The DVC pipeline parses and chains (fetch, feedback) -> prepare -> (report, train)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DVC = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the pipeline files in a scratch git repo, so dvc writes nothing here."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def _dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [DVC, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_stages_and_their_order(repo: Path) -> None:
    stages = [line.split()[0] for line in _dvc(repo, "stage", "list").splitlines() if line.strip()]
    assert stages == ["fetch", "feedback", "prepare", "report", "train"]
    edges = _dvc(repo, "dag", "--dot")
    pairs = [
        ("fetch", "prepare"),
        ("feedback", "prepare"),
        ("prepare", "report"),
        ("prepare", "train"),
    ]
    for a, b in pairs:
        assert f'"{a}" -> "{b}"' in edges


def test_the_default_remote_is_local_and_relative() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert "remote = local" in config
    assert "url = ../" in config
