"""Batch augmentation: shapes, seeding, and agreement with the evaluation preprocessing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pokedex.data.augment import AugmentConfig, BatchAugment
from pokedex.data.preprocess import CANVAS, PreprocessSpec, canvases_to_input
from tests.conftest import sprite

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# everything off and a white background: what evaluation and serving see
IDENTITY = AugmentConfig(
    scale=(1.0, 1.0), shift=0.0, rotate=0.0, flip=0.0, background_white=1.0,
    background_solid=0.0, background_gradient=0.0, brightness=0.0, contrast=0.0,
    saturation=0.0, hue=0.0, grayscale=0.0, blur=0.0, noise=0.0, lowres=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def canvases() -> torch.Tensor:
    arr = np.stack([np.asarray(sprite(i).resize((CANVAS, CANVAS))) for i in range(8)])
    return torch.from_numpy(arr)  # (8, 128, 128, 4) uint8 RGBA


def test_output_is_normalized_channels_last_batch(canvases: torch.Tensor) -> None:
    torch.manual_seed(0)
    out = BatchAugment(64, MEAN, STD)(canvases)
    assert out.shape == (8, 3, 64, 64)
    assert out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    pixels = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5
    assert pixels.max() <= 1 + 1e-5


def test_identity_config_matches_evaluation_preprocessing(canvases: torch.Tensor) -> None:
    """Training with augmentation off must see what serving sees (no train/serve skew)."""
    out = BatchAugment(64, MEAN, STD, IDENTITY)(canvases).numpy()
    spec = PreprocessSpec(size=64, mean=MEAN, std=STD, background=(255, 255, 255))
    expected = canvases_to_input(canvases.numpy(), spec)
    # exact 2x reduction: bilinear sampling between pixel centres = the 2x2 box filter
    assert np.abs(out - expected).max() < 0.05


def test_same_seed_same_batch_other_seed_differs(canvases: torch.Tensor) -> None:
    aug = BatchAugment(64, MEAN, STD)
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        runs.append(aug(canvases))
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def test_each_augmentation_changes_the_image(canvases: torch.Tensor) -> None:
    base = BatchAugment(64, MEAN, STD, IDENTITY)(canvases)
    for change in (
        {"flip": 1.0}, {"rotate": 30.0}, {"background_white": 0.0, "background_solid": 1.0},
        {"brightness": 0.5}, {"hue": 0.2}, {"blur": 1.0}, {"noise": 1.0, "noise_std": 0.1},
        {"lowres": 1.0},
    ):  # fmt: skip
        torch.manual_seed(0)
        out = BatchAugment(64, MEAN, STD, dataclasses.replace(IDENTITY, **change))(canvases)
        assert (out - base).abs().mean() > 1e-3, change


def test_background_only_shows_where_the_sprite_is_transparent(canvases: torch.Tensor) -> None:
    opaque = canvases.clone()
    opaque[..., 3] = 255
    solid = dataclasses.replace(IDENTITY, background_white=0.0, background_solid=1.0)
    white = BatchAugment(64, MEAN, STD, IDENTITY)(opaque)
    torch.manual_seed(0)
    coloured = BatchAugment(64, MEAN, STD, solid)(opaque)
    assert torch.allclose(white, coloured, atol=1e-5)
