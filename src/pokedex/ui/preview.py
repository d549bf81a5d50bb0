"""The picture as the model sees it, made with THE preprocessing (numpy + Pillow, no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pokedex.core.preprocess import CANVAS, canvases_to_rgb, decode, fit_square, to_rgba

MAX_PIXELS = 25_000_000  # the API's own limit: bigger uploads are refused there anyway
FORMATS = ("PNG", "JPEG", "WEBP")  # the API's: no other Pillow parser reads a user's bytes


def thumbnail(data: bytes, side: int) -> Image.Image:
    """The upload, upright and fitted in ``side`` x ``side`` px, to show on the page.

    ValueError for bytes Pillow cannot read, so the page never hands them to ``st.image``.
    """
    try:
        image = to_rgba(decode(data, max_pixels=MAX_PIXELS, formats=FORMATS))
    except Exception as exc:  # a user's bytes: OSError, SyntaxError, EOFError... all mean "no"
        raise ValueError(f"cannot read the picture: {exc}") from exc
    image.thumbnail((side, side))
    return image


def model_view(data: bytes, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """``(size, size, 3)`` uint8: the image after canvas fit, resize and background flattening.

    The same steps as ``image_to_input`` up to normalization; ValueError/OSError on bad bytes.
    """
    image = decode(data, max_pixels=MAX_PIXELS, formats=FORMATS)
    canvas = fit_square(to_rgba(image), CANVAS)[None]  # (1, S, S, 4)
    rgb = canvases_to_rgb(canvas, size, background)[0]  # (size, size, 3) in [0, 1]
    return np.rint(rgb * 255).astype(np.uint8)


def enlarge(pixels: np.ndarray, side: int) -> Image.Image:
    """Scale a small ``(H, W, 3)`` image up by a whole factor, at most to ``side``, so the
    model's pixels stay visible rather than smoothed away.
    """
    factor = max(1, side // max(pixels.shape[:2]))
    image = Image.fromarray(pixels)
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
