"""The make targets of the common tasks exist, and `make images` builds every Dockerfile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.delivery.conftest import IMAGES, REPO, needs_posix

pytestmark = [
    needs_posix,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make"),
]
TARGETS = ("setup", "serve", "test", "lint", "data", "feedback", "train", "docs", "images", "locks")


@pytest.mark.parametrize("target", TARGETS)
def test_target_exists(target: str) -> None:
    result = subprocess.run(
        ["make", "--dry-run", target], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _make_images(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        ["make", "--no-print-directory", "images", "IMAGE_TAG=t1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_images_skips_with_a_message_without_docker(tmp_path: Path) -> None:
    for tool in ("make", "sh"):  # a PATH with the shell tools and no docker
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = _make_images(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "docker not found: skipping" in result.stdout


def test_images_builds_every_dockerfile_with_docker(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    docker.chmod(0o755)
    result = _make_images(f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    expected = "build --file dockerfiles/{0}.Dockerfile --tag pokedex-{0}:t1 ."
    assert lines == [expected.format(image) for image in IMAGES]
