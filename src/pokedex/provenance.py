"""Run provenance (git commit, data version, package versions) and the experiment loggers."""

from __future__ import annotations

import json
import os
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


def build_logger(cfg: Any, run_dir: Path, run_name: str) -> Any:
    """The Lightning logger for ``cfg.kind``: mlflow (default), csv or wandb."""
    kind = cfg.kind
    if kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        return MLFlowLogger(
            experiment_name=cfg.experiment,
            tracking_uri=cfg.tracking_uri,
            run_name=run_name,
            log_model=False,
        )
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="", version="")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        return WandbLogger(project=cfg.project, name=run_name, save_dir=str(run_dir))
    raise ValueError(f"unknown logger kind {kind!r}: use mlflow, csv or wandb")
