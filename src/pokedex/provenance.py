"""Run provenance: the git commit, data version and package versions behind a number.

No ML imports: monitoring records the data version of its reference profile with it.
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "lightning", "numpy", "pillow", "mlflow", "onnxruntime")


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The commit and whether the work tree is dirty ("unknown" outside a git checkout)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown", "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def data_version(processed: Path) -> str:
    """The manifest hash written by `pokedex data prepare`."""
    summary = processed / "summary.json"
    if not summary.is_file():
        return "unknown"
    return str(json.loads(summary.read_text()).get("data_version", "unknown"))


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
