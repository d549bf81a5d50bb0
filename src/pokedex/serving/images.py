"""Uploaded bytes -> model input and image statistics, or an HTTP error that says what is wrong.

Runs in a worker thread (decoding is CPU work). The format is sniffed from the bytes, never
from the filename or the Content-Type the client claims; only PNG, JPEG and WebP reach Pillow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pokedex.core.predictor import OnnxPredictor
from pokedex.core.preprocess import (
    TooManyPixelsError,
    canvases_to_rgb,
    decode,
    flatten,
    normalize,
    to_canvas,
)
from pokedex.monitoring.features import flat_stats
from pokedex.serving.errors import ApiError

log = logging.getLogger(__name__)

SUPPORTED = "PNG, JPEG or WebP"
# Below this many pixels a side, a picture is blown up over 8 times to fill the 128 px canvas:
# too few pixels to tell a thousand species apart, and the answer would be a guess.
MIN_SIDE = 16
ACCEPTED = ("PNG", "JPEG", "WEBP")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF-", "PDF"),
)
_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIC", b"avif": "AVIF"}
UNREADABLE = (
    f"the file could not be read as an image: it is damaged or not a picture; "
    f"send a {SUPPORTED} image"
)


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
    """The image type from the magic bytes: ``"PNG"``, ``"JPEG"``, ``"WEBP"``, another type
    people send that the model does not take (``"GIF"``, ``"HEIC"``...), or None for bytes that
    begin no image type at all (damaged, or not a picture).
    """
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":  # ISO media: the brand names the type
        return _BRANDS.get(data[8:12])
    head = data[:4096].lstrip()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "SVG"
    return None


def prepare(data: bytes, predictor: OnnxPredictor, max_pixels: int) -> Prepared:
    """Check, decode and preprocess one upload; raise :class:`ApiError` (4xx) for bad input."""
    if not data:
        raise ApiError(400, f"the file is empty: send a {SUPPORTED} image")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(400, UNREADABLE)
    if fmt not in ACCEPTED:
        raise ApiError(415, f"{fmt} images are not supported: send a {SUPPORTED} image")
    try:
        # only the sniffed format's parser runs on untrusted bytes (Pillow's other parsers,
        # FITS, EPS, PDF..., have had bombs and out-of-bounds reads)
        image = decode(data, max_pixels=max_pixels, formats=(fmt,))
    except TooManyPixelsError as exc:
        raise ApiError(413, f"the image is too large: {exc}; send a smaller picture") from exc
    except Exception as exc:
        # any decoder failure on untrusted bytes (truncated, corrupt) is the client's input
        log.debug("decode failed: %r", exc)
        raise ApiError(400, _damaged(fmt)) from exc
    if image.format not in (*ACCEPTED, "MPO"):  # MPO: a JPEG, more pictures after it (HDR)
        # the magic bytes said one thing and Pillow found another: refuse rather than guess
        raise ApiError(400, UNREADABLE)
    if min(image.size) < MIN_SIDE:
        w, h = image.size
        raise ApiError(
            422,
            f"the image is {w}×{h} pixels, too small to recognise (minimum {MIN_SIDE} px a side): "
            "send a bigger picture",
        )
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


def _damaged(fmt: str) -> str:
    name = "WebP" if fmt == "WEBP" else fmt
    return f"the file could not be read as a {name} image: it is damaged or cut short"


def image_stats(size: tuple[int, int], rgb: np.ndarray, alpha: np.ndarray) -> ImageStats:
    """The uploaded size and the drift statistics of the image's composited ``(1, S, S, 3)``
    canvas and its alpha ``(1, S, S)``."""
    stats = flat_stats(rgb, alpha)
    return ImageStats(*size, **{name: float(values[0]) for name, values in stats.items()})
