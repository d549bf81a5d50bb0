"""End to end, the Recognize page's ways in (issue 23): the empty state, an example clicked,
a picture pasted with Ctrl+V and with the Paste button, and the phone layout, with the real API
and UI on 127.0.0.1 driven by headless Chromium.

The model is the colour Pokédex fixture, served with a gallery of its sprites (Snorlax left
out), so the examples are the fixture's own pictures. Screenshots go to
``$POKEDEX_UI_SCREENSHOTS`` (docs/img for the docs) or to pytest's temp folder.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from pokedex.ui.examples import COUNT
from tests.conftest import encode
from tests.ui.bundle import BY_NAME, sprite, write_colour_bundle
from tests.ui.test_dex_e2e import _gallery
from tests.ui.test_e2e import (
    DESKTOP,
    PHONE,
    Running,
    _no_traceback,
    _page,
    _png,
    _settled,
    _shoot,
    browser,
    started_stack,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
__all__ = ["browser"]  # the shared Chromium fixture

WELCOME = "Show the Pokédex a Pokémon and it names it"
CLIPBOARD = ["clipboard-read", "clipboard-write"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`pokedex serve` (colour Pokédex, with a gallery) and `pokedex ui` as subprocesses."""
    work = tmp_path_factory.mktemp("recognize-e2e")
    bundle = write_colour_bundle(work / "bundle")
    gallery = _gallery(work / "processed")
    with started_stack(bundle, work, {"POKEDEX_GALLERY": str(gallery)}) as stack:
        yield stack
        assert "Traceback" not in (work / "ui.log").read_text(errors="replace")


def _answer(page: Page, heading: str) -> None:
    """The card for ``heading`` with its top-5, drawn and settled."""
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("[data-testid=stProgress]")).to_have_count(5)
    _settled(page)
    _no_traceback(page)


def _loaded(images: Locator) -> int:
    """How many of these images the browser has decoded (a broken tile has no width)."""
    return int(images.evaluate_all("l => l.filter(i => i.complete && i.naturalWidth > 0).length"))


def _copy_image(page: Page, name: str) -> None:
    """Put the species' sprite on the browser's clipboard as a PNG."""
    data = base64.b64encode(encode(sprite(BY_NAME[name]), "PNG")).decode()
    page.evaluate(
        """async (data) => {
            const blob = await (await fetch(`data:image/png;base64,${data}`)).blob();
            await navigator.clipboard.write([new ClipboardItem({ "image/png": blob })]);
        }""",
        data,
    )


def test_empty_state_and_an_example(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    page.goto(stack.ui)
    expect(page.get_by_text(WELCOME)).to_be_visible()
    expect(page.get_by_text("Or try one of these")).to_be_visible()
    tiles = page.get_by_test_id("stImage").locator("img")
    expect(tiles).to_have_count(COUNT)
    _settled(page)
    assert _loaded(tiles) == COUNT  # every tile a picture, none broken
    for way_in in ("Upload or drop a picture", "Paste a picture", "Use the camera"):
        expect(page.get_by_text(way_in, exact=True).first).to_be_visible()
    _shoot(page, stack.shots / "ui-recognize-empty.png")

    page.get_by_role("button", name="Pikachu", exact=True).click()
    _answer(page, "Pikachu #025")
    expect(page.get_by_text(WELCOME)).to_have_count(0)
    expect(page.get_by_text("The example", exact=True)).to_be_visible()
    expect(page.get_by_text("As the model saw it")).to_be_visible()
    _shoot(page, stack.shots / "ui-recognize-example.png")

    # another example from the folded row below the answer
    page.get_by_text("Try an example", exact=True).click()
    page.get_by_role("button", name="Charmander", exact=True).click()
    _answer(page, "Charmander #004")
    page.close()


def test_paste_with_the_keyboard_and_the_button(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP, permissions=CLIPBOARD)
    page.goto(stack.ui)
    expect(page.get_by_text(WELCOME)).to_be_visible()
    expect(page.get_by_role("button", name="Paste a picture")).to_be_visible()
    _settled(page)

    # Ctrl+V (⌘V on a Mac) anywhere on the page
    _copy_image(page, "pikachu")
    page.get_by_role("heading", name="Recognize").click()
    page.keyboard.press("ControlOrMeta+V")
    _answer(page, "Pikachu #025")
    expect(page.get_by_text("Your picture", exact=True)).to_be_visible()

    # the button reads the clipboard itself
    _copy_image(page, "charmander")
    page.get_by_role("button", name="Paste a picture").click()
    _answer(page, "Charmander #004")

    # text is no picture: one sentence, and the answer before it stays
    page.evaluate("navigator.clipboard.writeText('Charmander')")
    page.get_by_role("button", name="Paste a picture").click()
    expect(page.get_by_text("The clipboard holds no picture")).to_be_visible()
    expect(page.get_by_role("heading", name="Charmander #004")).to_be_visible()
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-recognize-paste.png")
    page.close()

    # a browser that keeps the clipboard to itself: the button says to press Ctrl+V instead
    page = _page(browser, viewport=DESKTOP)
    page.goto(stack.ui)
    page.get_by_role("button", name="Paste a picture").click()
    expect(page.get_by_text("did not let the page read the clipboard")).to_be_visible()
    expect(page.get_by_text(WELCOME)).to_be_visible()
    _no_traceback(page)
    page.close()


def _box(locator: Locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on the page"
    return box


def test_on_a_phone_the_picture_stays_next_to_the_answer(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=PHONE, is_mobile=True, device_scale_factor=2)
    page.goto(stack.ui)
    image = _png(sprite(BY_NAME["pikachu"]), stack.work / "pikachu.png")
    page.locator("input[type=file]").set_input_files(str(image))
    _answer(page, "Pikachu #025")
    mine = page.get_by_test_id("stImage").filter(has_text="Your picture")
    heading = page.get_by_role("heading", name="Pikachu #025")
    best = page.locator("[data-testid=stProgress]").first
    mine.scroll_into_view_if_needed()
    picture, title, bar = _box(mine), _box(heading), _box(best)
    gap = title["y"] - (picture["y"] + picture["height"])
    span = bar["y"] + bar["height"] - picture["y"]
    print(f"\nphone: picture {picture}, heading {title}, gap {gap:.0f} px, span {span:.0f} px")
    # directly above the answer (or beside it), nothing long between them: before issue 23 the
    # picture came after the whole card, 1249 px below the species' name
    assert gap >= -title["height"], f"the picture is {-gap:.0f} px below the answer's name"
    assert gap < 120, f"{gap:.0f} px between the picture and the answer"
    # ...so the picture, the name and the best guess fit one phone screen together
    assert span <= PHONE["height"], f"picture to best guess spans {span:.0f} px"
    assert picture["x"] >= 0
    assert picture["x"] + picture["width"] <= PHONE["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
    # what the phone shows with the picture at the top, under the navigation bar
    mine.evaluate("el => { el.style.scrollMarginTop = '80px'; el.scrollIntoView(); }")
    page.wait_for_timeout(300)
    page.screenshot(path=stack.shots / "ui-recognize-phone-answer.png")
    _no_traceback(page)
    page.close()
