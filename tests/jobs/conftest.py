"""Running the GPU scripts on a CPU: their environment, and the checks on what they bring back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pokedex.jobs.gpurun import MAX_FILES, PART_BYTES

ROOT = Path(__file__).resolve().parents[2]


def gpu_script_env(tmp: Path, out: Path, **extra: str) -> dict[str, str]:
    """The environment `scripts/gpu_train.sh` (and the ablation) run with in the CPU tests: this
    Python, the pack and every working folder under ``tmp``, the results into ``out``."""
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(out),
        "POKEDEX_PACK": str(tmp / "pack"),
        "POKEDEX_PROCESSED": str(tmp / "processed"),
        "POKEDEX_BACKGROUNDS": str(tmp / "backgrounds"),
        "POKEDEX_RUNS": str(tmp / "runs"),
        **extra,
    }


def run_gpu_script(command: list[str], env: dict[str, str], out: Path) -> list[str]:
    """Run a GPU script from the repository root as the GPU machine would; assert it succeeded
    and that what it left in ``out`` can come back (file count and size limits); its names."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= MAX_FILES
    assert all((out / f).stat().st_size <= PART_BYTES for f in files)
    return files
