"""THE preprocessing: one definition used by data preparation, training evaluation and serving.

Numpy + Pillow only (serving must not import torch). Images travel as RGBA uint8 so the alpha
channel survives until the last step: training composites random backgrounds behind it,
evaluation and serving flatten onto the fixed background recorded in the bundle.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

# Packed arrays store every sprite on a transparent square canvas of this side.
CANVAS = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The most pixels a baseline JPEG may declare, as it decodes at reduced scale (see decode):
# Pillow's own decompression-bomb threshold (Image.MAX_IMAGE_PIXELS), 64 Mpx photos included.
JPEG_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects: recorded in the bundle, read back by the predictor."""

    size: int = 64
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    background: tuple[int, int, int] = (255, 255, 255)
    layout: str = field(default="NCHW")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the bundle."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown preprocessing keys: {sorted(unknown)}")
        d = dict(data)
        for key in ("mean", "std", "background"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def to_rgba(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode (P+tRNS, LA, CMYK, I;16...) to RGBA."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits rather than clipping everything to white
        arr = np.asarray(image, dtype=np.float64)
        peak = max(float(arr.max()), 1.0)
        image = Image.fromarray(np.rint(arr * (255.0 / peak)).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("PA")
    return image.convert("RGBA")


def fit_square(
    rgba: Image.Image, side: int, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """Resize keeping the aspect ratio so the longer side is ``side``; pad with transparency.

    Returns ``(side, side, 4)`` uint8, the content centred.
    """
    w, h = rgba.size
    scale = side / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        # premultiplied resampling keeps transparent pixels' colour from bleeding into edges
        rgba = rgba.convert("RGBa").resize((nw, nh), resample).convert("RGBA")
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(rgba, ((side - nw) // 2, (side - nh) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def resize_rgba(batch: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(N, S, S, 4)`` uint8 RGBA canvases to ``(N, size, size, 4)``.

    Box filtering, because training resamples canvases bilinearly (``BatchAugment``), which at
    an exact 2x reduction is the same 2x2 average: a sharper filter here (Lanczos) would show the
    model sharper images than it was trained on.
    """
    if batch.shape[1] == size:
        return batch
    out = np.empty((batch.shape[0], size, size, 4), dtype=np.uint8)
    for i, arr in enumerate(batch):
        out[i] = fit_square(Image.fromarray(arr, mode="RGBA"), size, Image.Resampling.BOX)
    return out


_CHUNK = 256  # canvases composited at a time by canvases_to_input


def flatten(batch: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite ``(N, H, W, 4)`` uint8 RGBA onto a solid background.

    Returns ``(N, H, W, 3)`` float32 in [0, 1].
    """
    alpha = batch[..., 3].astype(np.float32)
    alpha *= 1 / 255
    out = np.empty((*batch.shape[:-1], 3), dtype=np.float32)
    # one channel at a time, (c - bg) * alpha + bg in place: the server runs this on every
    # upload, and broadcasting alpha over a trailing axis of 3 made numpy's inner loops 3
    # elements long (4x slower, same numbers)
    for c, bg in enumerate(background):
        channel = batch[..., c].astype(np.float32)
        channel -= bg
        channel *= alpha
        channel += bg
        channel *= 1 / 255
        out[..., c] = channel
    return out


def normalize(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """``(N, H, W, 3)`` float in [0, 1] -> ``(N, 3, H, W)`` float32 standardized model input."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    x = (rgb - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def canvases_to_input(canvases: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Packed RGBA canvases ``(N, S, S, 4)`` -> model input ``(N, 3, size, size)``."""
    out = np.empty((len(canvases), 3, spec.size, spec.size), dtype=np.float32)
    for i in range(0, len(canvases), _CHUNK):  # bounded memory for whole splits
        rgb = canvases_to_rgb(canvases[i : i + _CHUNK], spec.size, spec.background)
        out[i : i + _CHUNK] = normalize(rgb, spec)
    return out


def canvases_to_rgb(
    canvases: np.ndarray,
    size: int,
    background: tuple[int, int, int],
    flat: np.ndarray | None = None,
) -> np.ndarray:
    """RGBA canvases ``(N, S, S, 4)`` -> what the model sees before normalization:
    ``(N, size, size, 3)`` float32 in [0, 1], composited on ``background``.

    ``flat`` is ``flatten(canvases, background)`` when the caller has it already (the server
    also measures the composited canvas), so it is not composited twice.
    """
    if canvases.shape[1] % size:  # not a whole-number reduction: resample each image
        return flatten(resize_rgba(canvases, size), background)
    return shrink(flatten(canvases, background) if flat is None else flat, size)


def shrink(rgb: np.ndarray, size: int) -> np.ndarray:
    """Box-reduce composited images ``(N, S, S, 3)`` to ``(N, size, size, 3)``, S a multiple.

    A box reduction of the composited image equals a box reduction of the premultiplied RGBA
    followed by compositing (what :func:`resize_rgba` and training's bilinear 2x resampling do),
    without their uint8 rounding. Sums of strided views: several times faster than a
    multi-axis mean.
    """
    n, side = rgb.shape[0], rgb.shape[1]
    k = side // size
    if k == 1:
        return rgb
    rows = rgb.reshape(n, size, k, side, 3)
    acc = rows[:, :, 0].copy()
    for j in range(1, k):
        acc += rows[:, :, j]
    cols = acc.reshape(n, size, size, k, 3)
    out = cols[:, :, :, 0].copy()
    for j in range(1, k):
        out += cols[:, :, :, j]
    out *= 1 / (k * k)
    return out


def image_to_input(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """A decoded image of any mode/size -> model input ``(1, 3, size, size)``.

    Goes through the same canvas step as the packed data so serving and training agree.
    """
    return canvases_to_input(to_canvas(image)[None], spec)


def to_canvas(image: Image.Image) -> np.ndarray:
    """A decoded image -> its ``(CANVAS, CANVAS, 4)`` uint8 RGBA canvas, as the packed data."""
    return fit_square(to_rgba(image), CANVAS)


class TooManyPixelsError(ValueError):
    """An image whose header declares more pixels than the caller's cap (a decompression bomb)."""


def decode(
    data: bytes, max_pixels: int = 40_000_000, formats: tuple[str, ...] | None = None
) -> Image.Image:
    """Decode image bytes with pixel caps checked from the header, before pixels are read.

    A JPEG decodes at a reduced scale (1/2 to 1/8, keeping at least twice the canvas side),
    chosen before any pixel is read, and ``max_pixels`` caps the pixels at that scale: a 48 Mpx
    phone photo decodes as 0.75 Mpx. A baseline JPEG's header may then declare up to
    :data:`JPEG_MAX_PIXELS`; a progressive JPEG's decoder holds the coefficients of the whole
    image (3-6 bytes a pixel), so its header is capped at ``max_pixels`` like any other format.
    ``formats`` (e.g. ``("PNG",)``) limits which of Pillow's parsers may even look at the bytes.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        # Pillow's own (higher) cap fires inside open(): callers expect the same error
        message = f"over the limit of {max_pixels:,} pixels ({exc})"
        raise TooManyPixelsError(message) from exc
    baseline_jpeg = image.format in ("JPEG", "MPO") and not image.info.get("progressive")
    _check_pixels(image.size, max(max_pixels, JPEG_MAX_PIXELS) if baseline_jpeg else max_pixels)
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image.draft("RGB", (CANVAS * 2, CANVAS * 2))  # JPEG only: sets the scale, reads no pixel
    _check_pixels(image.size, max_pixels)
    image.load()
    return image


def _check_pixels(size: tuple[int, int], cap: int) -> None:
    w, h = size
    if w * h > cap:
        raise TooManyPixelsError(f"{w}x{h} = {w * h:,} pixels, over the limit of {cap:,}")
