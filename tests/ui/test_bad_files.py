"""Files that are no picture on the Recognize page, under Streamlit's AppTest (issue 23, item 1).

The page never hands bytes it cannot decode to ``st.image``: one message, and no exception,
whatever the API answers. The same in a real browser: tests/ui/test_bad_files_e2e.py.
"""

from __future__ import annotations

import random

import pytest
from streamlit.testing.v1 import AppTest

from pokedex.ui.preview import thumbnail
from tests.conftest import encode, sprite
from tests.ui.conftest import PIKACHU, FakeApi, MakeApp

CORRUPT = random.Random(23).randbytes(4096)  # what a damaged download looks like
UNREADABLE = "The file could not be read as an image: it is damaged or not a picture"


def _upload(at: AppTest, data: bytes, name: str) -> AppTest:
    at.file_uploader[0].set_value((name, data, "image/png"))
    return at.run()


def test_a_corrupt_file_gets_one_message_and_no_picture(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    fake_api.set("POST", "/v1/predict", {"detail": UNREADABLE[:1].lower() + UNREADABLE[1:]}, 400)
    at = _upload(make_app().run(), CORRUPT, "corrupt.png")
    assert not at.exception, [e.message for e in at.exception]
    [error] = at.error
    assert error.value.startswith(UNREADABLE)
    assert "HTTP" not in error.value
    assert not at.get("image")


@pytest.mark.parametrize(
    "data",
    [CORRUPT, encode(sprite(1), "PNG")[:300], encode(sprite(1), "TIFF")],
    ids=["random", "truncated-png", "tiff"],
)
def test_the_answer_shows_even_when_the_page_cannot_draw_the_picture(
    make_app: MakeApp, data: bytes
) -> None:
    # the fake API answers every upload; the page must not fail on drawing what it cannot read
    at = _upload(make_app().run(), data, "odd.png")
    assert not at.exception, [e.message for e in at.exception]
    assert at.subheader[0].value == "Pikachu #025"
    assert len(at.get("progress")) == len(PIKACHU)
    assert not at.get("image")


def test_the_thumbnail_fits_the_side_and_refuses_bad_bytes() -> None:
    picture = thumbnail(encode(sprite(1, size=(1000, 400)).convert("RGB"), "JPEG"), 320)
    assert picture.size == (320, 128)
    assert picture.mode == "RGBA"
    with pytest.raises(ValueError, match="cannot read the picture"):
        thumbnail(CORRUPT, 320)
