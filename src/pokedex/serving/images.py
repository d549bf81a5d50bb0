"""Uploaded bytes -> model input and image statistics, or an HTTP error that says what is wrong.

Runs in a worker thread (decoding is CPU work). The format is sniffed from the bytes, never
from the filename or the Content-Type the client claims; only PNG, JPEG and WebP reach Pillow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pokedex.data.preprocess import canvases_to_rgb, decode, flatten, normalize, to_canvas
from pokedex.monitoring.features import flat_stats
from pokedex.serving.errors import ApiError
from pokedex.serving.predictor import OnnxPredictor

log = logging.getLogger(__name__)

SUPPORTED = "PNG, JPEG or WebP"


@dataclass(frozen=True)
class ImageStats:
    """What the prediction log records about an input image (never the pixels themselves)."""

    width: int
    height: int
    brightness: float  # the drift features of pokedex.monitoring.features, on the model's canvas
    contrast: float
    colourfulness: float
    sharpness: float
    alpha_coverage: float


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
        # only the sniffed format's parser runs on untrusted bytes (Pillow's other parsers,
        # FITS, EPS, PDF..., have had bombs and out-of-bounds reads)
        image = decode(data, max_pixels=max_pixels, formats=(fmt,))
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
        canvas = to_canvas(image)[None]  # (1, S, S, 4): the model input and statistics start here
        spec = predictor.spec
        rgb = flatten(canvas, spec.background)  # composited once, for the input and the stats
        x = normalize(canvases_to_rgb(canvas, spec.size, spec.background, flat=rgb), spec)[0]
        stats = image_stats(image.size, rgb, canvas[..., 3])
    except Exception as exc:
        log.debug("preprocessing failed: %r", exc)
        raise ApiError(400, f"cannot read the {fmt} image: {exc}") from exc
    return Prepared(x=x, stats=stats)


def image_stats(size: tuple[int, int], rgb: np.ndarray, alpha: np.ndarray) -> ImageStats:
    """The uploaded size and the drift statistics of the image's composited ``(1, S, S, 3)``
    canvas and its alpha ``(1, S, S)``."""
    stats = flat_stats(rgb, alpha)
    return ImageStats(*size, **{name: float(values[0]) for name, values in stats.items()})
