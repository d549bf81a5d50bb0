"""Bad input never gets a 5xx: each case is a 4xx with a JSON `detail` (RELIABILITY T11-T14)."""

from __future__ import annotations

import asyncio
import io
import random
import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pokedex.serving.app import create_app
from pokedex.serving.middleware import BodyLimitMiddleware
from pokedex.serving.settings import MB, Settings
from tests.conftest import encode, sprite
from tests.reliability.payloads import jpeg_declaring, photo_jpeg
from tests.serving.conftest import MakeSettings


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_error(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str | list)
    assert body["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (random.Random(0).randbytes(4096), 400),
        (b"just some text\n" * 10, 400),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', 415),
        (encode(sprite(5), "GIF"), 415),
        (encode(sprite(5), "TIFF"), 415),
        (encode(sprite(5), "PNG")[:300], 400),
        (encode(sprite(5, rgb=True), "JPEG")[:200], 400),
        (encode(sprite(5))[:100], 400),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 400),
        (png_header(30000, 30000), 413),
        (png_header(6000, 6000), 413),  # under Pillow's own cap, over ours (25 Mpx)
    ],
    ids=[
        "empty",
        "random",
        "text",
        "svg",
        "gif",
        "tiff",
        "truncated-png",
        "truncated-jpeg",
        "truncated-webp",
        "png-magic-garbage",
        "bomb-30000",
        "bomb-6000",
    ],
)
def test_bad_uploads_get_a_4xx(client: TestClient, data: bytes, status: int) -> None:
    assert_error(client.post("/v1/predict", files={"file": ("x.png", data, "image/png")}), status)


def test_same_bad_items_inside_a_batch_get_per_item_errors(client: TestClient) -> None:
    gif, bomb = encode(sprite(5), "GIF"), png_header(30000, 30000)
    files = [("files", b""), ("files", gif), ("files", bomb)]
    items = client.post("/v1/predict/batch", files=files).json()["items"]
    assert [item["error"]["status"] for item in items] == [400, 415, 413]


def test_unreadable_bytes_are_told_apart_from_unsupported_types(client: TestClient) -> None:
    # random bytes named like a PNG: not "unsupported", which would send a user looking for a
    # PNG converter, but unreadable (issue 23, item 1)
    corrupt = random.Random(23).randbytes(2048)
    response = client.post("/v1/predict", files={"file": ("corrupt.png", corrupt, "image/png")})
    assert_error(response, 400)
    assert "could not be read as an image" in response.json()["detail"]
    for fmt, data in [
        ("GIF", encode(sprite(5), "GIF")),
        ("HEIC", b"\x00\x00\x00\x18ftypheic" + bytes(64)),  # an iPhone photo's first bytes
    ]:
        response = client.post("/v1/predict", files={"file": ("photo.png", data, "image/png")})
        assert_error(response, 415)
        assert response.json()["detail"].startswith(f"{fmt} images are not supported"), fmt


def test_a_phone_photo_is_answered_and_bombs_are_still_refused(client: TestClient) -> None:
    # 48 Mpx, under the upload limit: decoded at 1/8 scale, not refused (issue 23, item 2)
    photo = photo_jpeg(8000, 6000)
    assert len(photo) < Settings().max_upload_bytes
    response = client.post("/v1/predict", files={"file": ("phone.jpg", photo, "image/jpeg")})
    assert response.status_code == 200, response.text
    for bomb in (
        png_header(6000, 6000),  # no reduced-scale decoding for PNG or WebP
        photo_jpeg(6000, 6000, progressive=True),
        jpeg_declaring(10_000, 10_000),
    ):
        response = client.post("/v1/predict", files={"file": ("bomb.jpg", bomb)})
        assert_error(response, 413)
        assert response.json()["detail"].startswith("the image is too large")


def test_a_jpeg_with_more_pictures_after_it_is_answered(client: TestClient) -> None:
    # phones store HDR gain maps and depth maps this way (MPF); Pillow calls the file "MPO"
    first, second = Image.new("RGB", (400, 300), (200, 30, 30)), Image.new("RGB", (100, 75))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    response = client.post("/v1/predict", files={"file": ("hdr.jpg", buffer.getvalue())})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("size", [(8, 8), (200, 15), (1, 1)])
def test_a_picture_too_small_to_recognise_is_a_422(
    client: TestClient, size: tuple[int, int]
) -> None:
    # not "does not look like a Pokémon": the picture is too small to say (issue 23, item 4)
    tiny = encode(Image.new("RGB", size, (240, 200, 40)), "PNG")
    response = client.post("/v1/predict", files={"file": ("tiny.png", tiny, "image/png")})
    assert_error(response, 422)
    detail = response.json()["detail"]
    assert f"{size[0]}×{size[1]} pixels, too small to recognise (minimum 16 px a side)" in detail
    items = client.post("/v1/predict/batch", files=[("files", tiny)]).json()["items"]
    assert items[0]["error"]["status"] == 422


def test_the_smallest_picture_recognised_is_16_px_a_side(client: TestClient) -> None:
    smallest = encode(Image.new("RGB", (16, 16), (240, 200, 40)), "PNG")
    assert client.post("/v1/predict", files={"file": smallest}).status_code == 200


def test_missing_or_misnamed_field_is_422(client: TestClient, png: bytes) -> None:
    assert_error(client.post("/v1/predict"), 422)
    assert_error(client.post("/v1/predict", files={"image": png}), 422)
    assert_error(
        client.post("/v1/predict", content=png, headers={"Content-Type": "image/png"}), 422
    )


@pytest.mark.parametrize("top_k", ["0", "21", "-1", "abc", "99999999999999999999"])
def test_top_k_out_of_range_is_422(client: TestClient, png: bytes, top_k: str) -> None:
    assert_error(client.post(f"/v1/predict?top_k={top_k}", files={"file": png}), 422)


def test_batch_of_65_is_413_and_empty_batch_is_422(client: TestClient, png: bytes) -> None:
    assert_error(client.post("/v1/predict/batch", files=[("files", png)] * 65), 413)
    assert client.post("/v1/predict/batch", files=[("files", png)] * 64).status_code == 200
    assert_error(client.post("/v1/predict/batch"), 422)


def test_the_default_upload_limit_is_in_force(client: TestClient) -> None:
    assert Settings().max_upload_bytes == 10 * MB
    over = b"\x89PNG\r\n\x1a\n" + bytes(10 * MB)
    assert_error(client.post("/v1/predict", files={"file": over}), 413)


@pytest.fixture
def small_limit(make_settings: MakeSettings) -> Iterator[TestClient]:
    """An app with a 64 kB upload limit, to test the limit without big bodies."""
    with TestClient(create_app(make_settings(max_upload_bytes=64 * 1024))) as c:
        yield c


def test_chunked_body_is_refused(small_limit: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(4):
            yield b"\x00" * (64 * 1024)

    response = small_limit.post(
        "/v1/predict",
        content=body(),  # no Content-Length: sent chunked
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(response, 413)


@pytest.mark.parametrize("declared", [None, "1024"])
def test_body_is_cut_off_while_reading(declared: str | None) -> None:
    """Endless 64 kB chunks, honest about nothing: reading stops just past the limit."""
    pulled, sent = 0, []

    async def endless() -> dict[str, object]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"\x00" * (64 * 1024), "more_body": True}

    async def read_all(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        while (await receive()).get("more_body"):
            pass

    async def collect(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(b"content-length", declared.encode())] if declared else []
    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": headers}
    app = BodyLimitMiddleware(read_all, default=256 * 1024)
    asyncio.run(app(scope, endless, collect))
    assert pulled == 5  # 4 chunks fill the limit, the 5th passes it
    assert sent[0]["status"] == 413


def test_declared_oversize_is_413(small_limit: TestClient) -> None:
    response = small_limit.post(
        "/v1/predict", files={"file": ("big.png", b"\x89PNG" + bytes(70 * 1024))}
    )
    assert_error(response, 413)


def test_unexpected_server_errors_are_generic_json(make_settings: MakeSettings, png: bytes) -> None:
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        model = client.app.state.serving.model  # type: ignore[attr-defined]

        def broken(inputs: object) -> object:
            raise RuntimeError("secret internals")

        model.predictor.run = broken
        response = client.post("/v1/predict", files={"file": png})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "secret" not in response.text


def test_batches_get_the_larger_batch_limit(client: TestClient) -> None:
    six_mb = b"\x00" * (6 * MB)  # two of them pass 10 MB, the single-upload limit
    response = client.post("/v1/predict/batch", files=[("files", six_mb), ("files", six_mb)])
    assert response.status_code == 200, response.text
    assert [item["error"]["status"] for item in response.json()["items"]] == [400, 400]
