"""Bad and odd files through the real UI and API in headless Chromium (issue 23).

The colour Pokédex fixture serves: what is checked is how the page answers a file, not what
the model says. Screenshots go where tests/ui/test_e2e.py puts its own.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.reliability.payloads import photo_jpeg
from tests.ui.bundle import write_colour_bundle
from tests.ui.test_e2e import (
    DESKTOP,
    Running,
    _no_traceback,
    _page,
    _shoot,
    started_stack,
)
from tests.ui.test_e2e import browser as chromium

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BROKE = "Something went wrong"
browser = chromium  # the page tests' fixture: Debian's Chromium, headless


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`pokedex serve` (colour Pokédex bundle) and `pokedex ui` on 127.0.0.1."""
    work = tmp_path_factory.mktemp("bad-files")
    bundle = write_colour_bundle(work / "bundle")
    with started_stack(bundle, work) as stack:
        yield stack
        assert "Traceback" not in (work / "ui.log").read_text(errors="replace")


def _upload(page: Page, stack: Running, name: str, data: bytes) -> None:
    path = stack.work / name
    path.write_bytes(data)
    page.goto(stack.ui)
    page.locator("input[type=file]").set_input_files(str(path))


def _one_message(page: Page, text: str) -> None:
    """Exactly one alert, saying ``text``, and no picture drawn from the bytes."""
    message = page.get_by_test_id("stAlert").filter(has_text=text)
    expect(message).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    expect(page.get_by_test_id("stAlert")).to_have_count(1)
    expect(page.get_by_text(BROKE)).to_have_count(0)
    assert "HTTP" not in message.inner_text()
    _no_traceback(page)


def test_a_corrupt_file_gets_one_clear_message(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    _upload(page, stack, "corrupt.png", random.Random(23).randbytes(4096))
    _one_message(page, "could not be read as an image")
    expect(page.get_by_text("Your picture")).to_have_count(0)
    _shoot(page, stack.shots / "ui-bad-file.png")
    page.close()


def test_a_tiny_picture_is_too_small_not_an_unknown_pokemon(
    browser: Browser, stack: Running
) -> None:
    page = _page(browser, viewport=DESKTOP)
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8), (240, 200, 40)).save(tiny, "PNG")
    _upload(page, stack, "tiny.png", tiny.getvalue())
    _one_message(page, "8×8 pixels, too small to recognise (minimum 16 px a side)")
    expect(page.get_by_text("does not look like a Pokémon")).to_have_count(0)
    page.close()


def test_a_phone_photo_is_answered(browser: Browser, stack: Running) -> None:
    # 36 Mpx, over the 25 Mpx cap at full size: the API and the page decode it at 1/8 scale
    page = _page(browser, viewport=DESKTOP)
    _upload(page, stack, "phone.jpg", photo_jpeg(6000, 6000))
    answer = page.get_by_text("answered in")  # the caption under every answer
    expect(answer).to_be_visible()
    expect(page.get_by_text("Your picture")).to_be_visible()
    expect(page.get_by_test_id("stAlert").filter(has_text="too large")).to_have_count(0)
    expect(page.get_by_text(BROKE)).to_have_count(0)
    _no_traceback(page)
    page.close()
