"""The model's view of a picture is THE preprocessing, stopped before normalization."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pokedex.core.preprocess import PreprocessSpec, image_to_input, normalize
from pokedex.ui.preview import enlarge, model_view
from tests.conftest import encode, sprite


@pytest.mark.parametrize(
    ("image", "size", "background"),
    [
        (sprite(1), 64, (255, 255, 255)),
        (sprite(2, size=(200, 90)), 32, (0, 128, 255)),
        (sprite(3, rgb=True), 48, (255, 255, 255)),
    ],
)
def test_model_view_is_the_model_input_before_normalization(
    image: Image.Image, size: int, background: tuple[int, int, int]
) -> None:
    spec = PreprocessSpec(size=size, background=background)
    view = model_view(encode(image, "PNG"), size, background)  # (size, size, 3) uint8
    assert view.shape == (size, size, 3)
    assert view.dtype == np.uint8
    expected = image_to_input(image, spec)  # (1, 3, size, size)
    # uint8 rounding moves a pixel by at most half a level: 0.5 / 255 / std after normalizing
    tolerance = 0.5 / 255 / min(spec.std) + 1e-6
    np.testing.assert_allclose(normalize(view[None] / 255.0, spec), expected, atol=tolerance)


def test_transparency_becomes_the_background() -> None:
    clear = Image.new("RGBA", (40, 40), (10, 200, 10, 0))
    view = model_view(encode(clear, "PNG"), 16, (0, 128, 255))
    assert (view == np.array([0, 128, 255], dtype=np.uint8)).all()


def test_bad_bytes_raise_for_the_caller_to_skip_the_preview() -> None:
    with pytest.raises((ValueError, OSError)):
        model_view(b"not an image", 64, (255, 255, 255))


def test_enlarge_keeps_pixels_sharp() -> None:
    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    big = np.asarray(enlarge(pixels, side=16))
    assert big.shape == (16, 16, 3)
    np.testing.assert_array_equal(big[::4, ::4], pixels)  # nearest: each pixel a 4x4 block
    np.testing.assert_array_equal(big[3::4, 3::4], pixels)
