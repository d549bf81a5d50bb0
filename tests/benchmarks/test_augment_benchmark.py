"""`pokedex benchmark augment`: every step timed, the table, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pokedex.benchmarks.augment import format_table, load_batch, run
from pokedex.cli import app
from pokedex.data.augment import AugmentConfig
from pokedex.errors import PokedexError

STEPS = [
    "geometry (affine)",
    "geometry (affine + perspective)",
    "whole augmentation",
    "whole augmentation + perspective",
]


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("processed")
    canvases = np.random.default_rng(0).integers(0, 256, (12, 128, 128, 4), dtype=np.uint8)
    np.save(root / "train_images.npy", canvases)
    return root


def test_every_step_is_timed_and_tabled_against_the_affine_geometry(processed: Path) -> None:
    canvases = load_batch(processed, 6)
    assert canvases.shape == (6, 128, 128, 4)
    assert canvases.flags.writeable
    results = run(canvases, size=16, augment=AugmentConfig(), repeats=3)
    assert [r.name for r in results] == STEPS
    assert all(len(r.ms) == 3 and min(r.ms) > 0 for r in results)
    table = format_table(results, batch=6, size=16, context="test")
    assert "batch 6 canvases of 128 px to 16 px, median of 3 repeats" in table
    assert "| geometry (affine) |" in table
    assert "| 1.00× |" in table
    assert len(table.splitlines()) == 4 + len(STEPS)


def test_photo_tiles_are_used_when_the_preset_asks_for_them(processed: Path) -> None:
    photo = AugmentConfig(background_photo=0.5)
    with pytest.raises(ValueError, match="tile bank"):
        run(load_batch(processed, 4), size=16, augment=photo, repeats=1)
    tiles = np.zeros((3, 24, 24, 3), dtype=np.uint8)
    assert len(run(load_batch(processed, 4), size=16, augment=photo, tiles=tiles, repeats=1)) == 4


def test_bad_input_gets_one_clear_line(processed: Path, tmp_path: Path) -> None:
    with pytest.raises(PokedexError, match=r"--batch 13: choose between 1 and 12"):
        load_batch(processed, 13)
    with pytest.raises(PokedexError, match=r"train_images\.npy not found"):
        load_batch(tmp_path, 4)
    with pytest.raises(PokedexError, match="at least one repeat"):
        run(load_batch(processed, 2), size=16, augment=AugmentConfig(), repeats=0)
    with pytest.raises(PokedexError, match=r"perspective_distortion=0\.9"):
        run(load_batch(processed, 2), size=16, augment=AugmentConfig(), distortion=0.9)
    if not torch.cuda.is_available():
        with pytest.raises(PokedexError, match="no CUDA device"):
            run(load_batch(processed, 2), size=16, augment=AugmentConfig(), device="cuda")


def test_the_command_prints_the_table_for_a_preset(processed: Path) -> None:
    args = ["benchmark", "augment", "--processed", str(processed), "--experiment", "smoke"]
    done = CliRunner().invoke(app, [*args, "--batch", "4", "--repeats", "1"])
    assert done.exit_code == 0, done.output
    assert "experiment=smoke on " in done.output
    assert "| whole augmentation + perspective |" in done.output
    bad = CliRunner().invoke(app, [*args, "--batch", "40"])
    assert bad.exit_code == 1
    assert "error: --batch 40: choose between 1 and 12" in bad.output
