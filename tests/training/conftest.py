"""A processed dataset (through the real `prepare`) shared by the training tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pokedex.data.prepare import prepare
from pokedex.jobs.gpurun import MAX_FILES, PART_BYTES
from tests.conftest import write_raw

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 species x 8 synthetic sprites, validated, split and packed."""
    root = tmp_path_factory.mktemp("train-data")
    write_raw(root / "raw", per_species=8)
    return prepare(root / "raw", root / "processed", workers=1).out


def smoke_overrides(processed: Path, out: Path, *extra: str) -> list[str]:
    """The smoke preset pointed at the test data and a private output folder."""
    return ["experiment=smoke", f"data.root={processed}", f"output_dir={out}", *extra]


@pytest.fixture(scope="session")
def smoke_bundle(processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained by the smoke preset on the synthetic data."""
    from pokedex.jobs.train import compose_config, train

    out = tmp_path_factory.mktemp("smoke-run")
    return train(compose_config(smoke_overrides(processed, out))).bundle.path


def write_photo_folder(processed: Path, root: Path) -> Path:
    """A labelled photo set laid out ``species/file`` from the test split's canvases."""
    classes = json.loads((processed / "classes.json").read_text())
    images = np.load(processed / "test_images.npy")
    labels = np.load(processed / "test_labels.npy")
    for i, (canvas, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas[..., :3]).save(folder / f"{i}.jpg", quality=90)
    return root


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
