"""Outlier exposure: generated non-Pokémon canvases join each training batch, labelled -1, and
a uniform-target loss teaches the model to spread its belief on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pokedex.core.preprocess import PreprocessSpec
from pokedex.data.backgrounds import TILES_FILE
from pokedex.data.datamodule import OUTLIER_POOL, PackedDataModule
from pokedex.models.module import PokedexModule

NET = {"arch": "resnet18", "stem_pool": True}


def test_outliers_are_scored_against_the_uniform_distribution_only() -> None:
    types = torch.zeros(4, 18)
    types[torch.arange(4), torch.tensor([0, 3, 3, 7])] = 1
    m = PokedexModule(NET, num_classes=4, type_targets=types, outlier_weight=0.5).eval()
    torch.manual_seed(0)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, -1, -1])
    loss, species = m._losses(x, y)
    assert species.shape == (4, 4)  # the logits of the Pokémon, for the training accuracy
    logits, type_logits = m(x)
    expected = (
        F.cross_entropy(logits[:4], y[:4], label_smoothing=0.1)
        + 0.2 * F.binary_cross_entropy_with_logits(type_logits[:4], types[y[:4]])
        + 0.5 * -logits[4:].log_softmax(1).mean(1).mean()
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    alone, _ = m._losses(x[:4], y[:4])  # without outliers, the loss is the plain one
    assert float(alone) == pytest.approx(
        float(expected - 0.5 * -logits[4:].log_softmax(1).mean(1).mean()), rel=1e-5
    )


def test_each_training_batch_gains_the_same_outliers_at_the_same_step(
    processed: Path, tmp_path: Path
) -> None:
    tiles = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / TILES_FILE, tiles)
    dm = PackedDataModule(
        processed, PreprocessSpec(size=32), batch_size=8, outliers=3, backgrounds=tmp_path
    )
    assert dm.outlier_pool is not None
    assert dm.outlier_pool.shape == (OUTLIER_POOL, 128, 128, 4)
    x = torch.zeros(8, 128, 128, 4, dtype=torch.uint8)
    y = torch.arange(8)
    ax, ay = dm.on_after_batch_transfer((x, y), 0)
    bx, by = dm.on_after_batch_transfer((x, y), 0)
    assert ax.shape == (11, 3, 32, 32)
    assert ay.tolist() == [*range(8), -1, -1, -1]
    assert torch.equal(ax, bx)  # seeded by the step, like the augmentation
    assert torch.equal(ay, by)
    assert not torch.equal(ax[8], ax[0])  # an outlier is no blank canvas
