"""Per-image validation: decode once, check, and turn a good image into a packed RGBA canvas."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pokedex.core.preprocess import CANVAS, fit_square, to_rgba

# File extension -> the Pillow format it must actually contain.
FORMATS = {".webp": "WEBP", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
EXPECTED_MODES = ("RGB", "RGBA")
MAX_SIDE = 1024  # the dataset's sprites are <= 128 px; anything far larger is not a sprite


@dataclass(frozen=True)
class ImageCheck:
    """The outcome of validating one file: either a canvas or the reason it was rejected."""

    path: str  # relative to the dataset root, POSIX separators
    sha256: str
    reason: str | None  # None when the image is good
    width: int = 0
    height: int = 0
    mode: str = ""
    has_alpha: bool = False
    canvas: np.ndarray | None = None  # (CANVAS, CANVAS, 4) uint8
    pixel_hash: str = ""  # sha256 of the canvas: exact duplicates regardless of encoding
    dhash: bytes = b""  # 256-bit difference hash of the flattened canvas: near duplicates


def difference_hash(canvas: np.ndarray, side: int = 16) -> bytes:
    """``side``² -bit dHash of an RGBA canvas flattened on white.

    Robust to re-encoding, shiny recolours of the same pose and one-pixel shifts; 256 bits
    because 64 bits cannot tell apart sprites that are mostly white background.
    """
    alpha = canvas[..., 3:4].astype(np.float32) / 255.0
    grey = (canvas[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).mean(axis=2)
    small = Image.fromarray(grey.astype(np.uint8)).resize((side + 1, side), Image.Resampling.BOX)
    px = np.asarray(small, dtype=np.int16)  # (side, side + 1)
    return np.packbits(px[:, 1:] > px[:, :-1]).tobytes()


def check_image(root: Path, rel: str) -> ImageCheck:
    """Validate ``root/rel`` and return its canvas, or the reason it is unusable."""
    data = (root / rel).read_bytes()
    digest = hashlib.sha256(data).hexdigest()

    def bad(reason: str, **kw: object) -> ImageCheck:
        return ImageCheck(path=rel, sha256=digest, reason=reason, **kw)  # type: ignore[arg-type]

    if not data:
        return bad("empty file")
    expected = FORMATS.get(Path(rel).suffix.lower())
    if expected is None:
        return bad(f"unsupported extension {Path(rel).suffix!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(root / rel)
            w, h, mode, fmt = image.width, image.height, image.mode, image.format
            if fmt != expected:
                return bad(f"content is {fmt}, extension says {expected}", width=w, height=h)
            if max(w, h) > MAX_SIDE:
                return bad(f"{w}x{h} is over the {MAX_SIDE} px limit", width=w, height=h, mode=mode)
            if getattr(image, "n_frames", 1) > 1:
                return bad(f"animated ({image.n_frames} frames)", width=w, height=h, mode=mode)
            if mode not in EXPECTED_MODES:
                return bad(f"unexpected mode {mode}", width=w, height=h, mode=mode)
            image.load()
    except Exception as exc:  # any decoder failure means the file is unusable
        return bad(f"cannot decode: {type(exc).__name__}: {exc}")
    has_alpha = mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255
    # to_rgba applies the EXIF orientation, exactly as serving's image_to_input does
    canvas = fit_square(to_rgba(image), CANVAS)
    return ImageCheck(
        path=rel,
        sha256=digest,
        reason=None,
        width=w,
        height=h,
        mode=mode,
        has_alpha=bool(has_alpha),
        canvas=canvas,
        pixel_hash=hashlib.sha256(canvas.tobytes()).hexdigest(),
        dhash=difference_hash(canvas),
    )
