"""Uploaded bytes -> model input and image statistics, or an HTTP error that says what is wrong.

Runs in a worker thread (decoding is CPU work). The format is sniffed from the bytes, never
from the filename or the Content-Type the client claims; only PNG, JPEG and WebP reach Pillow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pokedex.data.preprocess import decode, flatten, to_rgba
from pokedex.serving.errors import ApiError
from pokedex.serving.predictor import OnnxPredictor

log = logging.getLogger(__name__)

SUPPORTED = "PNG, JPEG or WebP"
_STATS_SIDE = 64  # statistics are computed on a thumbnail: cheap even for a 25 Mpx upload
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class ImageStats:
    """What the prediction log records about an input image (never the pixels themselves)."""

    width: int
    height: int
    brightness: float  # mean luma in [0, 1], composited on the model's background
    contrast: float  # standard deviation of that luma
    alpha_coverage: float  # fraction of pixels that are not fully transparent


@dataclass(frozen=True)
class Prepared:
    """One decoded upload: the model input ``(3, H, W)`` and its statistics."""

    x: np.ndarray
    stats: ImageStats


def sniff_format(data: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"`` or ``"WEBP"`` from the magic bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def prepare(data: bytes, predictor: OnnxPredictor, max_pixels: int) -> Prepared:
    """Check, decode and preprocess one upload; raise :class:`ApiError` (4xx) for bad input."""
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(415, f"unsupported file type: send a {SUPPORTED} image")
    try:
        image = decode(data, max_pixels=max_pixels)
    except ValueError as exc:
        if "pixels" in str(exc):
            raise ApiError(413, f"image too large: {exc}") from exc
        raise ApiError(400, f"cannot decode the {fmt} image") from exc
    except Exception as exc:
        # any decoder failure on untrusted bytes (truncated, corrupt) is the client's input
        log.debug("decode failed: %r", exc)
        raise ApiError(400, f"cannot decode the {fmt} image: it is corrupt or truncated") from exc
    if image.format not in ("PNG", "JPEG", "WEBP"):
        # the magic bytes said one thing and Pillow found another: refuse rather than guess
        raise ApiError(415, f"unsupported file type: send a {SUPPORTED} image")
    try:
        x = predictor.preprocess_image(image)
        stats = image_stats(image, predictor.spec.background)
    except Exception as exc:
        log.debug("preprocessing failed: %r", exc)
        raise ApiError(400, f"cannot read the {fmt} image: {exc}") from exc
    return Prepared(x=x, stats=stats)


def image_stats(image: Image.Image, background: tuple[int, int, int]) -> ImageStats:
    """Size, brightness, contrast and alpha coverage of a decoded image."""
    width, height = image.size
    small = image.copy()
    small.thumbnail((_STATS_SIDE, _STATS_SIDE))
    rgba = np.asarray(to_rgba(small), dtype=np.uint8)  # (h, w, 4)
    rgb = flatten(rgba[None], background)[0]  # (h, w, 3) in [0, 1]
    luma = rgb @ _LUMA  # (h, w)
    return ImageStats(
        width=width,
        height=height,
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        alpha_coverage=float((rgba[..., 3] > 0).mean()),
    )
