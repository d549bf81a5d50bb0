"""Controlled distribution shifts of packed RGBA canvases, at five severities each.

Every shift maps canvases ``(N, S, S, 4)`` uint8 to canvases of the same shape, so the shifted
images go through THE preprocessing unchanged. Background shifts put a new backdrop behind the
sprite's alpha; photometric shifts act on the image as the model would see it (composited on the
bundle's background, hence opaque), like a photo; geometric shifts keep the alpha. Random parts
(colours, noise) are seeded per shift and severity: a run is repeatable image for image.
Numpy, Pillow and scipy only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from pokedex.core.preprocess import flatten

SEVERITIES = (1, 2, 3, 4, 5)
Background = tuple[int, int, int]
ShiftFn = Callable[[np.ndarray, float, np.random.Generator, Background], np.ndarray]


@dataclass(frozen=True)
class Shift:
    """One kind of shift: what it does, its parameter at severities 1-5, and the function."""

    name: str
    description: str
    levels: tuple[float, ...]  # the parameter at each severity, mildest first
    fn: ShiftFn

    def apply(
        self, canvases: np.ndarray, severity: int, background: Background, seed: int = 0
    ) -> np.ndarray:
        """The canvases shifted at ``severity`` (1-5), deterministically for a ``seed``."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity {severity}: use 1 to {len(SEVERITIES)}")
        index = list(SHIFTS).index(self.name)
        rng = np.random.default_rng([seed, index, severity])
        return self.fn(np.asarray(canvases), self.levels[severity - 1], rng, background)


def _opaque(rgb: np.ndarray) -> np.ndarray:
    """``(N, S, S, 3)`` float in [0, 1] -> opaque RGBA canvases uint8."""
    out = np.empty((*rgb.shape[:3], 4), dtype=np.uint8)
    out[..., :3] = np.rint(np.clip(rgb, 0, 1) * 255)
    out[..., 3] = 255
    return out


def _behind(canvases: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Composite the canvases over ``backdrop`` ``(N, S, S, 3)`` in [0, 1]."""
    rgb = canvases[..., :3].astype(np.float32) / 255
    alpha = canvases[..., 3:].astype(np.float32) / 255
    return _opaque(rgb * alpha + backdrop * (1 - alpha))


def _solid_background(c: np.ndarray, weight: float, rng: np.random.Generator, bg: Background):
    colours = rng.random((len(c), 1, 1, 3), dtype=np.float32)
    white = np.asarray(bg, dtype=np.float32) / 255
    backdrop = white + weight * (colours - white)  # weight 1: the random colour itself
    return _behind(c, np.broadcast_to(backdrop, (*c.shape[:3], 3)))


def _noise_background(c: np.ndarray, weight: float, rng: np.random.Generator, bg: Background):
    # clutter: low-frequency colour blotches plus fine grain, like a photographed scene
    n, side = len(c), c.shape[1]
    coarse = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    smooth = (
        np.stack(
            [
                np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BICUBIC))
                for g in coarse
            ]
        ).astype(np.float32)
        / 255
    )
    texture = smooth + 0.08 * rng.standard_normal(smooth.shape, dtype=np.float32)
    white = np.asarray(bg, dtype=np.float32) / 255
    return _behind(c, np.clip(white + weight * (texture - white), 0, 1))


def _brightness(c: np.ndarray, factor: float, rng: np.random.Generator, bg: Background):
    return _opaque(flatten(c, bg) * factor)


def _contrast(c: np.ndarray, factor: float, rng: np.random.Generator, bg: Background):
    rgb = flatten(c, bg)
    mean = rgb.mean(axis=(1, 2, 3), keepdims=True)
    return _opaque(mean + factor * (rgb - mean))


def _blur(c: np.ndarray, sigma: float, rng: np.random.Generator, bg: Background):
    return _opaque(gaussian_filter(flatten(c, bg), sigma=(0, sigma, sigma, 0), mode="nearest"))


def _noise(c: np.ndarray, std: float, rng: np.random.Generator, bg: Background):
    rgb = flatten(c, bg)
    return _opaque(rgb + std * rng.standard_normal(rgb.shape, dtype=np.float32))


def _jpeg(c: np.ndarray, quality: float, rng: np.random.Generator, bg: Background):
    out = []
    for rgb in _opaque(flatten(c, bg))[..., :3]:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=int(quality))
        out.append(np.asarray(Image.open(buf).convert("RGBA")))
    return np.stack(out)


def _per_image(c: np.ndarray, fn: Callable[[Image.Image, int], Image.Image]) -> np.ndarray:
    # premultiplied, so transparent pixels' colour never bleeds into the resampled edges
    return np.stack(
        [
            np.asarray(fn(Image.fromarray(a, "RGBA").convert("RGBa"), i).convert("RGBA"))
            for i, a in enumerate(c)
        ]
    )


def _rotation(c: np.ndarray, degrees: float, rng: np.random.Generator, bg: Background):
    # alternate directions, so a model biased one way is not flattered
    return _per_image(
        c, lambda im, i: im.rotate(degrees if i % 2 == 0 else -degrees, Image.Resampling.BILINEAR)
    )


def _scale(c: np.ndarray, fraction: float, rng: np.random.Generator, bg: Background):
    side = c.shape[1]
    small = max(1, round(side * fraction))

    def shrink(im: Image.Image, _: int) -> Image.Image:
        canvas = Image.new("RGBa", (side, side))
        canvas.paste(
            im.resize((small, small), Image.Resampling.BILINEAR), ((side - small) // 2,) * 2
        )
        return canvas

    return _per_image(c, shrink)


def _crop(c: np.ndarray, fraction: float, rng: np.random.Generator, bg: Background):
    side = c.shape[1]
    keep = max(1, round(side * fraction))
    box = ((side - keep) // 2, (side - keep) // 2, (side + keep) // 2, (side + keep) // 2)
    return _per_image(c, lambda im, _: im.resize((side, side), Image.Resampling.BILINEAR, box=box))


def _lowres(c: np.ndarray, fraction: float, rng: np.random.Generator, bg: Background):
    side = c.shape[1]
    small = max(2, round(side * fraction))
    out = []
    for rgb in _opaque(flatten(c, bg))[..., :3]:
        down = Image.fromarray(rgb).resize((small, small), Image.Resampling.BOX)
        out.append(np.asarray(down.resize((side, side), Image.Resampling.BILINEAR).convert("RGBA")))
    return np.stack(out)


SHIFTS: dict[str, Shift] = {
    s.name: s
    for s in (
        Shift("background_solid", "transparent background -> random solid colour (blend weight)",
              (0.2, 0.4, 0.6, 0.8, 1.0), _solid_background),
        Shift("background_noise", "transparent background -> photo-like colour clutter (weight)",
              (0.2, 0.4, 0.6, 0.8, 1.0), _noise_background),
        Shift("brightness", "pixel values x factor", (0.8, 0.65, 0.5, 0.35, 0.2), _brightness),
        Shift("contrast", "distance from the mean x factor", (0.75, 0.55, 0.4, 0.25, 0.15),
              _contrast),
        Shift("blur", "Gaussian blur, sigma in canvas pixels", (1.0, 1.5, 2.0, 3.0, 4.5), _blur),
        Shift("noise", "additive Gaussian noise, std", (0.03, 0.06, 0.1, 0.15, 0.22), _noise),
        Shift("jpeg", "JPEG round trip, quality", (75, 50, 30, 15, 7), _jpeg),
        Shift("rotation", "rotation, degrees (alternating sign)", (10, 20, 30, 45, 60), _rotation),
        Shift("scale", "sprite shrunk to a fraction of the canvas", (0.85, 0.7, 0.55, 0.45, 0.35),
              _scale),
        Shift("crop", "central crop of a fraction of the canvas, enlarged",
              (0.9, 0.8, 0.7, 0.6, 0.5), _crop),
        Shift("lowres", "down-then-up sampling, fraction of the side",
              (0.5, 0.35, 0.25, 0.18, 0.12), _lowres),
    )
}  # fmt: skip
