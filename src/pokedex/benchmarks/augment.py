"""`pokedex benchmark augment`: what each part of the batch augmentation costs per batch.

The geometry step alone (affine ``grid_sample``), the same with the perspective warp on every
image (a homography per image on the same ``grid_sample``), and the whole augmentation of a
training preset without and with the warp, timed on one batch of training canvases on the device
that trains (CPU here, CUDA on a GPU machine). The warp's cost does not depend on its share of
images: when it is on at all, the whole batch takes the projective grid.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pokedex.core.preprocess import IMAGENET_MEAN, IMAGENET_STD
from pokedex.data.augment import AugmentConfig, BatchAugment, photo_tiles
from pokedex.errors import PokedexError


@dataclass
class StepTime:
    """Milliseconds per batch of one augmentation step (one figure per repeat)."""

    name: str
    ms: list[float]

    @property
    def median(self) -> float:
        """The median repeat."""
        return statistics.median(self.ms)


def _timed_once(
    fn: Callable[[torch.Tensor], object], arg: torch.Tensor, device: torch.device
) -> float:
    """Milliseconds of one call, the device's queue drained before the clock stops."""
    start = time.perf_counter()
    fn(arg)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000


def run(
    canvases: np.ndarray,
    *,
    size: int,
    augment: AugmentConfig,
    tiles: np.ndarray | None = None,
    distortion: float = 0.3,
    repeats: int = 10,
    device: str = "cpu",
) -> list[StepTime]:
    """Time the steps on ``canvases`` ``(N, S, S, 4)`` uint8 (one batch) at input ``size``."""
    if repeats < 1:
        raise PokedexError(f"--repeats {repeats}: time at least one repeat")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PokedexError("--device cuda: no CUDA device here")
    slanted = dataclasses.replace(augment, perspective=1.0, perspective_distortion=distortion)
    flat = dataclasses.replace(augment, perspective=0.0)
    bank = photo_tiles(tiles)
    batch = torch.from_numpy(np.ascontiguousarray(canvases)).to(dev)
    x = batch.permute(0, 3, 1, 2).float()
    x[:, :3] *= x[:, 3:]  # premultiplied, as BatchAugment.forward hands it to the geometry

    def make(config: AugmentConfig) -> BatchAugment:
        return BatchAugment(size, IMAGENET_MEAN, IMAGENET_STD, config, bank).to(dev)

    steps = {
        "geometry (affine)": (make(flat)._geometry, x),
        "geometry (affine + perspective)": (make(slanted)._geometry, x),
        "whole augmentation": (make(flat), batch),
        "whole augmentation + perspective": (make(slanted), batch),
    }
    results = {name: StepTime(name, []) for name in steps}
    with torch.no_grad():
        for fn, arg in steps.values():  # warm-up: allocation, kernel selection
            _timed_once(fn, arg, dev)
        # interleaved, so that other load on the machine hits every step alike; each repeat
        # reseeded, so the steps draw the same backgrounds and degradations (the warp draws its
        # corners after the geometry's own numbers and before everything else)
        for repeat in range(repeats):
            for name, (fn, arg) in steps.items():
                torch.manual_seed(repeat)
                results[name].ms.append(_timed_once(fn, arg, dev))
    return list(results.values())


def load_batch(processed: Path, batch: int) -> np.ndarray:
    """The first ``batch`` training canvases ``(batch, 128, 128, 4)`` of ``processed``."""
    path = processed / "train_images.npy"
    if not path.is_file():
        raise PokedexError(f"{path} not found: run `pokedex data prepare` first")
    images = np.load(path, mmap_mode="r")
    if batch < 1 or batch > len(images):
        raise PokedexError(f"--batch {batch}: choose between 1 and {len(images)}")
    return np.array(images[:batch])  # a writable copy in memory


def format_table(results: list[StepTime], *, batch: int, size: int, context: str) -> str:
    """A markdown table: ms per batch, and each step against the affine geometry."""
    base = results[0].median
    rows = [
        f"{context}; batch {batch} canvases of 128 px to {size} px, median of "
        f"{len(results[0].ms)} repeats.",
        "",
        "| step | ms / batch | against the affine geometry |",
        "|---|---:|---:|",
    ]
    for r in results:
        rows.append(f"| {r.name} | {r.median:.1f} | {r.median / base:.2f}× |")
    return "\n".join(rows)
