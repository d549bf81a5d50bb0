"""Batch augmentation: shapes, seeding, and agreement with the evaluation preprocessing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pokedex.core.preprocess import CANVAS, PreprocessSpec, canvases_to_input
from pokedex.data.augment import (
    MAX_PERSPECTIVE,
    AugmentConfig,
    BatchAugment,
    perspective_homography,
)
from pokedex.errors import PokedexError
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
        {"lowres": 1.0}, {"perspective": 1.0},
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


def _colour_step_by_step(rgb: torch.Tensor, c: AugmentConfig) -> torch.Tensor:
    """The colour jitter written out one operation at a time (the definition the fused affine
    map in BatchAugment must equal), drawing its random numbers in the same order."""
    import math

    from pokedex.data.augment import _hue_rotation

    n, shape = rgb.shape[0], (rgb.shape[0], 1, 1, 1)
    rgb = rgb * torch.empty(n).uniform_(1 - c.brightness, 1 + c.brightness).view(shape)
    grey = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mean = grey.mean((2, 3), keepdim=True)
    rgb = mean + (rgb - mean) * torch.empty(n).uniform_(1 - c.contrast, 1 + c.contrast).view(shape)
    rgb = grey + (rgb - grey) * torch.empty(n).uniform_(1 - c.saturation, 1 + c.saturation).view(
        shape
    )
    angle = torch.empty(n).uniform_(-c.hue, c.hue) * 2 * math.pi
    rgb = torch.einsum("nij,njhw->nihw", _hue_rotation(angle), rgb)
    to_grey = (torch.rand(n) < c.grayscale).view(shape)
    return torch.where(to_grey, grey.expand_as(rgb), rgb).clamp(0, 1)


def test_the_fused_colour_map_equals_the_step_by_step_jitter() -> None:
    config = AugmentConfig(brightness=0.4, contrast=0.5, saturation=0.6, hue=0.1, grayscale=0.3)
    rgb = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    augment = BatchAugment(16, MEAN, STD, config)
    torch.manual_seed(7)
    fused = augment._colour(rgb.clone())
    torch.manual_seed(7)
    reference = _colour_step_by_step(rgb.clone(), config)
    assert torch.allclose(fused, reference, atol=1e-5)
    assert (fused != rgb).any(dim=(1, 2, 3)).all()  # every image changed


def test_photo_backgrounds_are_tiles_of_the_bank_behind_the_transparent_pixels() -> None:
    # two flat tiles, so the resampled background of each image is exactly one of them
    tiles = torch.stack([torch.full((3, 24, 24), v, dtype=torch.uint8) for v in (40, 200)])
    photo = dataclasses.replace(IDENTITY, background_white=0.0, background_photo=1.0)
    empty = torch.zeros(16, CANVAS, CANVAS, 4, dtype=torch.uint8)  # all transparent
    torch.manual_seed(0)
    out = BatchAugment(32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), photo, tiles)(empty)
    values = out.mean((1, 2, 3)) * 255
    assert all(min(abs(v - 40), abs(v - 200)) < 0.5 for v in values.tolist())
    assert {round(v) for v in values.tolist()} == {40, 200}  # both tiles drawn


def test_photo_backgrounds_need_a_bank() -> None:
    photo = dataclasses.replace(IDENTITY, background_photo=0.5)
    with pytest.raises(ValueError, match="tile bank"):
        BatchAugment(32, MEAN, STD, photo)


def test_the_background_bank_records_every_source_and_refuses_to_be_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from pokedex.data import backgrounds
    from pokedex.errors import PokedexError

    monkeypatch.setattr(backgrounds, "SOURCES", ())  # none of the packages installed
    with pytest.raises(PokedexError, match="pass --extra FOLDER"):
        backgrounds.build_backgrounds(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with pytest.raises(PokedexError, match=r"run `pokedex data backgrounds`"):
        backgrounds.load_tiles(tmp_path / "none")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    manifest = backgrounds.build_backgrounds(
        tmp_path / "bg", extra=[tmp_path / "a.png", tmp_path / "broken.jpg"], tiles_per_image=4
    )
    tiles = backgrounds.load_tiles(tmp_path / "bg")
    assert tiles.shape == (4, backgrounds.TILE, backgrounds.TILE, 3)
    used, skipped = manifest["sources"]
    assert used["tiles"] == 4
    assert len(used["sha256"]) == 64
    assert "licence" in used
    assert "skipped" in skipped


def test_jpeg_artefacts_change_the_image_by_the_codecs_blocks(canvases: torch.Tensor) -> None:
    off = dataclasses.replace(IDENTITY, background_white=0.0, background_solid=1.0)
    on = dataclasses.replace(off, jpeg=1.0, jpeg_quality=(10, 10))
    torch.manual_seed(3)
    clean = BatchAugment(64, MEAN, STD, off)(canvases)
    torch.manual_seed(3)
    lossy = BatchAugment(64, MEAN, STD, on)(canvases)
    assert lossy.shape == clean.shape
    assert 0.01 < (lossy - clean).abs().mean() < 0.5  # changed, yet the same images


# The perspective warp: a homography per image on the same grid_sample as the affine geometry.
CORNERS = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])


def test_perspective_at_strength_zero_is_the_identity(canvases: torch.Tensor) -> None:
    flat = BatchAugment(64, MEAN, STD, IDENTITY)(canvases)
    zero = dataclasses.replace(IDENTITY, perspective=1.0, perspective_distortion=0.0)
    torch.manual_seed(0)
    assert torch.allclose(BatchAugment(64, MEAN, STD, zero)(canvases), flat, atol=1e-4)


@pytest.mark.parametrize("distortion", [0.1, 0.3, MAX_PERSPECTIVE])
def test_perspective_moves_each_corner_inward_by_at_most_its_strength(distortion: float) -> None:
    torch.manual_seed(0)
    maps = perspective_homography(4096, 1.0, distortion, torch.device("cpu"))  # output -> input
    # where the input's corners show in the output: (N, 4, 2)
    shown = CORNERS @ torch.linalg.inv(maps).transpose(1, 2)
    shown = shown[..., :2] / shown[..., 2:]
    inward = 1 - shown * CORNERS[:, :2]  # per axis, in units of half the side
    assert inward.min() >= -1e-5
    assert inward.max() <= distortion + 1e-5
    assert inward.max() > 0.9 * distortion  # the whole range is drawn, not a sliver of it


def test_perspective_keeps_the_sprite_inside_the_moved_corners(canvases: torch.Tensor) -> None:
    """An opaque black canvas on the white evaluation background: the output is 1 - alpha.
    The view's centre, inside every possible quadrilateral, stays covered; its corners do not."""
    opaque = torch.zeros(64, CANVAS, CANVAS, 4, dtype=torch.uint8)
    opaque[..., 3] = 255
    d, size = 0.3, 64
    slant = dataclasses.replace(IDENTITY, perspective=1.0, perspective_distortion=d)
    torch.manual_seed(0)
    alpha = 1 - BatchAugment(size, (0.0,) * 3, (1.0,) * 3, slant)(opaque)[:, 0]  # (N, 64, 64)
    margin = int(d * size / 2) + 1  # d of half the side, plus a pixel of bilinear edge
    assert torch.allclose(alpha[:, margin:-margin, margin:-margin], torch.tensor(1.0), atol=1e-4)
    assert (alpha[:, [0, 0, -1, -1], [0, -1, 0, -1]] < 0.5).any(1).float().mean() > 0.9


def test_perspective_on_the_cpu_keeps_alpha_in_range_and_colour_premultiplied(
    canvases: torch.Tensor,
) -> None:
    strong = AugmentConfig(perspective=1.0, perspective_distortion=MAX_PERSPECTIVE, rotate=30.0)
    augment = BatchAugment(48, MEAN, STD, strong)
    x = canvases.permute(0, 3, 1, 2).float()
    x[:, :3] *= x[:, 3:]  # premultiplied, as forward() hands it over
    torch.manual_seed(0)
    out = augment._geometry(x)  # (N, 4, 48, 48): colour 0-255^2, alpha 0-255
    assert out.device.type == "cpu"
    assert torch.isfinite(out).all()
    alpha = out[:, 3:] / 255
    assert alpha.min() >= 0
    assert alpha.max() <= 1 + 1e-6
    assert (out[:, :3] <= out[:, 3:] * 255 * (1 + 1e-5) + 1e-3).all()  # never brighter than alpha


def test_perspective_same_seed_same_slant_other_seed_differs(canvases: torch.Tensor) -> None:
    only = dataclasses.replace(IDENTITY, perspective=0.5, perspective_distortion=0.4)
    augment = BatchAugment(64, MEAN, STD, only)
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(augment(canvases))
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"perspective": 1.5}, r"augment\.perspective=1\.5: a share of images, between 0 and 1"),
        ({"perspective": -0.1}, r"augment\.perspective=-0\.1"),
        (
            {"perspective_distortion": 0.8},
            r"perspective_distortion=0\.8: choose between 0 and 0\.5",
        ),
        ({"perspective_distortion": -0.2}, r"perspective_distortion=-0\.2"),
    ],
)
def test_bad_perspective_settings_fail_with_one_line(change: dict, message: str) -> None:
    with pytest.raises(PokedexError, match=message) as err:
        AugmentConfig(**change)
    assert "\n" not in str(err.value)
