"""What the paste component sends, turned into a picture or a sentence (issue 23). The paste
in a real browser, Ctrl+V and the button: tests/ui/test_recognize_e2e.py."""

from __future__ import annotations

import base64
import re

import pytest

from pokedex.ui.paste import MAX_BYTES, pasted_picture
from tests.conftest import encode
from tests.ui.bundle import BY_NAME, sprite

PNG = encode(sprite(BY_NAME["pikachu"]), "PNG")


@pytest.mark.parametrize(
    ("kind", "filename"),
    [("image/png", "pasted.png"), ("image/jpeg", "pasted.jpg"), ("image/webp", "pasted.webp")],
)
def test_a_pasted_picture_keeps_its_bytes(kind: str, filename: str) -> None:
    payload = {"type": kind, "data": base64.b64encode(PNG).decode()}
    assert pasted_picture(payload) == (PNG, filename)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"error": "no-image"}, "The clipboard holds no picture: copy an image first"),
        ({"error": "no-access"}, "did not let the page read the clipboard: press Ctrl+V"),
        ({"error": "too-large", "size": 31_457_280}, "The pasted picture is 30.0 MB, over the 10"),
        ({"error": "something new"}, "The paste did not arrive"),
        (None, "The paste did not arrive"),
        ("image/png", "The paste did not arrive"),
        ({"type": "image/png"}, "The paste did not arrive"),
        ({"type": "image/png", "data": "not base64 at all!"}, "arrived damaged"),
        ({"type": "image/png", "data": "A" * (MAX_BYTES * 2)}, "over the 10 MB limit"),
    ],
)
def test_what_is_no_picture_gets_one_sentence(payload: object, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        pasted_picture(payload)
    assert "\n" not in str(caught.value)
