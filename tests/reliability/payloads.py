"""Hostile and odd uploads, built here from a seed (RELIABILITY.md T11, T12).

Each :class:`Upload` carries the statuses that are correct for it: a 4xx for bad input, 200
for an odd but valid image. A 5xx is never correct.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.conftest import encode, sprite

MB = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One multipart file part and the answers that are correct for it."""

    name: str
    data: bytes
    expected: frozenset[int]
    filename: str = "upload.png"
    content_type: str | None = "image/png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def png_declaring(width: int, height: int) -> bytes:
    """A valid little PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb)."""
    data = bytearray(encode(Image.new("RGB", (4, 4)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts after sig+len+type
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def webp_declaring(side: int) -> bytes:
    """A lossless WebP whose VP8L header claims ``side`` x ``side`` (16383 is the format's max)."""
    data = bytearray(encode(Image.new("RGBA", (1, 1))))
    at = data.index(b"VP8L") + 8  # chunk tag + size, then the 0x2f signature byte
    bits = struct.unpack_from("<I", data, at + 1)[0]
    bits = (bits & ~0xFFFFFFF) | (side - 1) | ((side - 1) << 14)  # 14 bits width-1, height-1
    struct.pack_into("<I", data, at + 1, bits)
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A valid little baseline JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16)), "JPEG"))
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height, width
    struct.pack_into(">HH", data, at, height, width)
    return bytes(data)


def photo_jpeg(width: int, height: int, **params: object) -> bytes:
    """A smooth photo-sized JPEG (colour gradients), quick to make at any size."""
    ramp = Image.linear_gradient("L")
    bands = (ramp.resize((width, height)), ramp.rotate(90).resize((width, height)))
    image = Image.merge("RGB", (*bands, Image.new("L", (width, height), 128)))
    return encode(image, "JPEG", quality=85, **params)


def gif_declaring(side: int) -> bytes:
    """A GIF header with a ``side`` x ``side`` logical screen and nothing else."""
    return b"GIF89a" + struct.pack("<HH", side, side) + b"\x00\x00\x00" + b"\x3b"


def png_with_ztxt(megabytes: int) -> bytes:
    """A sprite PNG carrying a zTXt chunk that inflates to ``megabytes`` MB of text."""
    png = encode(sprite(11), "PNG")
    ztxt = _chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"A" * (megabytes * MB), 9))
    return png[:33] + ztxt + png[33:]  # right after IHDR (8 + 25 bytes)


def animated(fmt: str, frames: int) -> bytes:
    """An animation of ``frames`` solid frames in ``fmt`` (GIF, PNG or WEBP)."""
    images = [Image.new("RGB", (32, 32), (i % 256, 0, 255 - i % 256)) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=10)


def cmyk_jpeg() -> bytes:
    """A sprite as a CMYK JPEG (print workflows produce these)."""
    return encode(sprite(12, rgb=True).convert("CMYK"), "JPEG", quality=90)


def png_16_bit() -> bytes:
    """A 16-bit greyscale PNG."""
    ramp = (np.arange(64 * 64, dtype=np.uint16) * 16).reshape(64, 64)
    return encode(Image.fromarray(ramp), "PNG")


def palette_png() -> bytes:
    """A palette PNG with a transparent index."""
    image = sprite(13).convert("RGB").quantize(16)
    return encode(image, "PNG", transparency=0)


def exif_rotated_jpeg() -> bytes:
    """A JPEG whose EXIF orientation says 'rotate 90°'."""
    image = sprite(14, rgb=True)
    exif = image.getexif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes())


def zip_file() -> bytes:
    """A zip archive holding one file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.txt", "not an image")
    return buf.getvalue()


def hostile_uploads() -> list[Upload]:
    """Every hostile or odd upload of the suite, each with its correct statuses."""
    rng = random.Random(0)
    png, jpeg, webp = (
        encode(sprite(10), "PNG"),
        encode(sprite(10, rgb=True), "JPEG", quality=90),
        encode(sprite(10)),
    )
    bad = frozenset({400})  # empty, damaged, or no image type at all
    unsupported = frozenset({415})  # an image type (or PDF) the API does not take
    too_big = frozenset({413})
    ok = frozenset({200})
    return [
        Upload("empty", b"", bad),
        Upload("random-1k", rng.randbytes(1024), bad),
        Upload("random-1m", rng.randbytes(MB), bad),
        Upload("text", b"hello\n" * 100, bad, content_type="text/plain"),
        Upload("html", b"<!doctype html><script>alert(1)</script>", bad),
        Upload("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', unsupported),
        Upload("pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", unsupported),
        Upload("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n", bad),
        Upload("fits", b"SIMPLE  =                    T" + b" " * 2850, bad),
        Upload("tiff", encode(sprite(15), "TIFF"), unsupported),
        Upload("ico", encode(sprite(15), "ICO"), unsupported),
        Upload("bmp", encode(sprite(15, rgb=True), "BMP"), unsupported),
        Upload("gif-animated-500", animated("GIF", 500), unsupported),
        Upload("gif-bomb-65535", gif_declaring(65535), unsupported),
        Upload("zip-named-png", zip_file(), bad),
        Upload("truncated-png", png[: len(png) // 2], bad),
        Upload("truncated-jpeg", jpeg[: len(jpeg) // 2], bad),
        Upload("truncated-webp", webp[: len(webp) // 2], bad),
        Upload("png-magic-then-garbage", png[:8] + rng.randbytes(4096), bad),
        Upload("png-bomb-50000", png_declaring(50_000, 50_000), too_big),
        Upload("png-bomb-10000", png_declaring(10_000, 10_000), too_big),  # Pillow only warns
        Upload("png-over-25mpx", png_declaring(6_000, 6_000), too_big),
        Upload("webp-bomb-16383", webp_declaring(16_383), too_big),
        Upload("jpeg-bomb-65535", jpeg_declaring(65_535, 65_535), too_big),
        Upload("jpeg-bomb-10000", jpeg_declaring(10_000, 10_000), too_big),  # Pillow only warns
        # a progressive JPEG holds the coefficients of every pixel: refused from the header
        Upload("jpeg-progressive-over-25mpx", photo_jpeg(6_000, 6_000, progressive=True), too_big),
        Upload("jpeg-photo-48mpx", photo_jpeg(8_000, 6_000), ok),  # decoded at 1/8 scale
        Upload("png-ztxt-9mb", png_with_ztxt(9), bad),  # over Pillow's text-chunk cap
        Upload("polyglot-png-zip", png + zip_file(), ok),
        Upload("apng-100", animated("PNG", 100), ok),
        Upload("webp-animated-100", animated("WEBP", 100), ok),
        Upload("cmyk-jpeg", cmyk_jpeg(), ok),
        Upload("png-16-bit", png_16_bit(), ok),
        Upload("png-palette-trns", palette_png(), ok),
        Upload("jpeg-exif-rotated", exif_rotated_jpeg(), ok),
        Upload("jpeg-named-png", jpeg, ok),
        Upload("content-type-gif", png, ok, content_type="image/gif"),
        Upload("content-type-octet", png, ok, content_type="application/octet-stream"),
        Upload("content-type-missing", png, ok, content_type=None),
        Upload("filename-traversal", png, ok, filename="../../../../tmp/evil.png"),
        Upload("filename-backslash", png, ok, filename="..\\..\\evil.png"),
        Upload("filename-unicode", png, ok, filename="ピカチュウ 🔥 ﬁ.png"),
        Upload("filename-crlf", png, ok, filename="a.png\r\nX-Injected: 1"),
        Upload("filename-10k", png, bad, filename="n" * 10_000 + ".png"),  # multipart header cap
        Upload("filename-empty", png, frozenset({422}), filename=""),  # a field, not a file
    ]
