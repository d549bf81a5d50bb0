"""THE preprocessing: packed-canvas vs serving identity, mode conversions, decode limits, spec."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, UnidentifiedImageError

from pokedex.core.preprocess import (
    CANVAS,
    PreprocessSpec,
    TooManyPixelsError,
    canvases_to_input,
    decode,
    fit_square,
    flatten,
    image_to_input,
    resize_rgba,
    to_rgba,
)
from pokedex.data.validate import check_image
from tests.conftest import encode, sprite
from tests.reliability.payloads import jpeg_declaring, photo_jpeg

SPECS = [
    PreprocessSpec(),
    PreprocessSpec(size=128, background=(0, 0, 0)),
    PreprocessSpec(size=96, background=(30, 140, 250), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1)),
]
IMAGES = {
    "rgba": lambda: sprite(1),
    "rgb": lambda: sprite(2, rgb=True),
    "wide": lambda: sprite(3, size=(128, 72)),
    "small": lambda: sprite(4, size=(40, 56)),
    "large": lambda: sprite(5, size=(300, 240), rgb=True),
}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"size{s.size}")
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_serving_input_equals_the_packed_canvas_input(
    tmp_path: Path, kind: str, spec: PreprocessSpec
) -> None:
    """Training evaluates on packed canvases, serving decodes files: the arrays must be equal."""
    data = encode(IMAGES[kind]())
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.webp").write_bytes(data)
    packed = check_image(tmp_path, "x/a.webp")
    assert packed.reason is None
    assert packed.canvas is not None
    served = image_to_input(decode(data), spec)
    assert served.shape == (1, 3, spec.size, spec.size)
    assert served.dtype == np.float32
    assert np.array_equal(canvases_to_input(packed.canvas[None], spec), served)


def test_transparent_pixels_take_the_background_colour() -> None:
    spec = PreprocessSpec(size=CANVAS, background=(10, 200, 30), mean=(0, 0, 0), std=(1, 1, 1))
    canvas = np.zeros((1, CANVAS, CANVAS, 4), dtype=np.uint8)
    canvas[0, :, :, :3] = 255  # invisible white must not leak through
    canvas[0, 0, 0] = (100, 50, 0, 255)  # opaque
    canvas[0, 0, 1] = (255, 255, 255, 0)  # transparent
    canvas[0, 0, 2] = (200, 0, 0, 51)  # 20% opaque red
    x = canvases_to_input(canvas, spec)  # (1, 3, H, W)
    assert np.allclose(x[0, :, 0, 0], np.array([100, 50, 0]) / 255)
    assert np.allclose(x[0, :, 0, 1], np.array([10, 200, 30]) / 255)
    blend = 0.2 * np.array([200, 0, 0]) + 0.8 * np.array([10, 200, 30])
    assert np.allclose(x[0, :, 0, 2], blend / 255)
    assert np.allclose(x[0, :, 64, 64], np.array([10, 200, 30]) / 255)
    assert flatten(canvas, (10, 200, 30)).shape == (1, CANVAS, CANVAS, 3)


def test_flatten_is_straight_alpha_compositing() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, 16, 16, 4), dtype=np.uint8)
    bg = np.array([10, 200, 30])
    a = batch[..., 3:] / 255
    expected = (batch[..., :3] * a + bg * (1 - a)) / 255
    out = flatten(batch, (10, 200, 30))
    assert out.dtype == np.float32
    assert out.shape == (2, 16, 16, 3)
    assert np.allclose(out, expected, atol=1e-6)


def test_fit_square_keeps_aspect_and_centres() -> None:
    canvas = fit_square(Image.new("RGBA", (200, 100), (255, 0, 0, 255)), 128)  # (128, 128, 4)
    alpha = canvas[..., 3]
    rows = np.nonzero(alpha.any(axis=1))[0]
    assert (rows[0], rows[-1]) == (32, 95)  # 64 rows of content, 32 of padding each side
    assert alpha.any(axis=0).all()  # the long side fills the canvas
    batch = canvas[None]
    assert resize_rgba(batch, 128) is batch
    assert resize_rgba(batch, 64).shape == (1, 64, 64, 4)


def test_exif_rotated_jpeg_is_upright() -> None:
    image = Image.new("RGB", (96, 48), (250, 20, 20))
    image.paste((20, 20, 250), (0, 0, 48, 48))  # left half blue, right half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    rgba = np.asarray(to_rgba(decode(encode(image, "JPEG", exif=exif, quality=95))))
    assert rgba.shape == (96, 48, 4)  # portrait now
    top, bottom = rgba[10, 24].astype(int), rgba[85, 24].astype(int)
    assert top[2] > 200 > top[0]  # the left (blue) half is on top
    assert bottom[0] > 200 > bottom[2]


def test_palette_with_transparency_keeps_it() -> None:
    image = Image.new("P", (4, 1))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.putdata([0, 1, 2, 1])
    rgba = np.asarray(to_rgba(decode(encode(image, "PNG", transparency=0))))
    assert rgba[0].tolist() == [[0, 0, 0, 0], [255, 0, 0, 255], [0, 255, 0, 255], [255, 0, 0, 255]]


def test_grey_with_alpha_and_cmyk_convert() -> None:
    la = Image.new("LA", (2, 1))
    la.putdata([(90, 255), (200, 0)])
    assert np.asarray(to_rgba(la))[0].tolist() == [[90, 90, 90, 255], [200, 200, 200, 0]]
    cmyk = to_rgba(Image.new("CMYK", (2, 2), (0, 255, 255, 0)))
    assert np.asarray(cmyk)[0, 0].tolist() == [255, 0, 0, 255]


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    ramp = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)  # 0 .. 63000
    image = decode(encode(Image.fromarray(ramp), "PNG"))
    assert image.mode.startswith("I")
    rgba = np.asarray(to_rgba(image))
    grey = rgba[..., 0].ravel().astype(int)
    assert (grey[0], grey[-1]) == (0, 255)
    assert np.all(np.diff(grey) >= 0)
    assert len(set(grey.tolist())) > 50  # a ramp, not a white square
    assert (rgba[..., 3] == 255).all()


def _png_declaring(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR is patched to claim another size (CRC kept valid)."""
    data = bytearray(encode(Image.new("RGB", (4, 4)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts after sig+len+type
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# 30000² trips Pillow's own bomb check inside open(), 7000² and 101² only ours
@pytest.mark.parametrize(
    ("side", "max_pixels"), [(30000, 40_000_000), (7000, 40_000_000), (101, 10_000)]
)
def test_decode_refuses_huge_headers_before_reading_pixels(
    monkeypatch: pytest.MonkeyPatch, side: int, max_pixels: int
) -> None:
    def no_pixels(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_pixels)
    with pytest.raises(ValueError, match=f"over the limit of {max_pixels:,}"):
        decode(_png_declaring(side, side), max_pixels=max_pixels)


def test_a_phone_photo_jpeg_decodes_at_reduced_scale_under_the_cap() -> None:
    # 36 Mpx, over a 25 Mpx cap at full size: decoded at 1/8 scale (issue 23, item 2)
    image = decode(photo_jpeg(6000, 6000), max_pixels=25_000_000, formats=("JPEG",))
    assert image.size == (750, 750)  # still at least twice the canvas side
    assert image.getpixel((375, 375)) == pytest.approx((127, 127, 128), abs=4)


@pytest.mark.parametrize(
    "data",
    [
        jpeg_declaring(10_000, 10_000),  # 100 Mpx: over Pillow's threshold, where it only warns
        jpeg_declaring(65_535, 65_535),
        photo_jpeg(6000, 6000, progressive=True),  # its decoder would hold all 36 Mpx
    ],
    ids=["baseline-100mpx", "baseline-4gpx", "progressive-36mpx"],
)
def test_decode_still_refuses_jpeg_bombs_from_the_header(
    monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    def no_pixels(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_pixels)
    with pytest.raises(TooManyPixelsError, match="over the limit of"):
        decode(data, max_pixels=25_000_000)


def test_decode_accepts_up_to_the_cap_and_takes_the_first_frame() -> None:
    assert decode(encode(Image.new("RGB", (100, 100)), "PNG"), max_pixels=10_000).size == (100, 100)
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    first = decode(encode(frames[0], save_all=True, append_images=frames[1:]))
    assert first.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_spec_round_trips_through_json_and_rejects_unknown_keys() -> None:
    spec = PreprocessSpec(size=96, mean=(0.1, 0.2, 0.3), std=(1, 2, 3), background=(1, 2, 3))
    back = PreprocessSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert isinstance(back.background, tuple)
    assert PreprocessSpec.from_dict({}) == PreprocessSpec()
    with pytest.raises(ValueError, match=r"unknown preprocessing keys: \['colour', 'crop'\]"):
        PreprocessSpec.from_dict({**spec.to_dict(), "crop": 0.9, "colour": "rgb"})


def test_decode_can_restrict_the_parsers_that_run() -> None:
    gif = encode(Image.new("RGB", (4, 4)), "GIF")
    assert decode(gif).format == "GIF"
    with pytest.raises(UnidentifiedImageError):
        decode(gif, formats=("PNG", "JPEG", "WEBP"))
