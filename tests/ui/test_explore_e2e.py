"""End to end, Explore and Model after a picture: the real API (the colour Pokédex fixture with a
gallery of its sprites) and the real UI on 127.0.0.1, driven by headless Chromium.

A Pikachu sprite is recognized, then the in-app navigation (the same browser session) opens
Explore, where the picture's star must sit nearest Pikachu's points and the tooltips show the
species' pictures from the API; the Model page then times that picture. Screenshots go to
``$POKEDEX_UI_SCREENSHOTS`` (docs/img for the docs) or to pytest's temp folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.ui.bundle import BY_NAME, sprite, write_colour_bundle
from tests.ui.test_dex_e2e import _gallery
from tests.ui.test_e2e import (
    DESKTOP,
    Running,
    _no_traceback,
    _page,
    _png,
    _settled,
    browser,
    started_stack,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
__all__ = ["browser"]  # the shared Chromium fixture

STAR = '.vega-embed path[aria-label="Your picture"]'
TOOLTIP = "#vg-tooltip-element"
PICTURE = "pikachu.png"  # written into the stack's folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`pokedex serve` (the colour Pokédex, with its gallery) and `pokedex ui`."""
    work = tmp_path_factory.mktemp("explore-e2e")
    bundle = write_colour_bundle(work / "bundle")
    gallery = _gallery(work / "processed")
    _png(sprite(BY_NAME["pikachu"]), work / PICTURE)
    with started_stack(bundle, work, {"POKEDEX_GALLERY": str(gallery)}) as stack:
        yield stack


def _centre(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _species_centres(page: Page) -> dict[str, tuple[float, float]]:
    """Each species' mean point on screen, from the points' accessible labels
    (``...; title: Pikachu; ...``)."""
    spots: dict[str, list[tuple[float, float]]] = {}
    for point in page.locator('.vega-embed path[aria-roledescription="circle"]').all():
        label = point.get_attribute("aria-label") or ""
        name = re.search(r"; title: ([^;]+);", label)
        assert name is not None
        spots.setdefault(name.group(1), []).append(_centre(point))
    return {
        name: (sum(x for x, _ in xy) / len(xy), sum(y for _, y in xy) / len(xy))
        for name, xy in spots.items()
    }


def _recognize_then_open(page: Page, stack: Running, link: str) -> None:
    """Recognize the Pikachu sprite, then follow the navigation link (same session)."""
    page.goto(stack.ui)
    page.locator("input[type=file]").set_input_files(str(stack.work / PICTURE))
    heading = page.get_by_role("heading", name=re.compile("Pikachu"))
    expect(heading.first).to_be_visible()
    _settled(page)
    page.get_by_role("link", name=link).click()


def test_the_upload_is_found_on_the_map(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    _recognize_then_open(page, stack, "Explore")
    star = page.locator(STAR)
    expect(star).to_have_count(1)
    _settled(page)
    _no_traceback(page)
    expect(page.get_by_text("It is placed from the model's answer, not projected")).to_be_visible()

    x, y = _centre(star)
    centres = _species_centres(page)
    assert len(centres) == len(BY_NAME)
    nearest = min(centres, key=lambda name: math.dist((x, y), centres[name]))
    assert nearest == "Pikachu", f"the star at {(x, y)} is nearest {nearest}: {centres}"

    star.hover()
    tooltip = page.locator(TOOLTIP)
    expect(tooltip).to_contain_text("Your picture")
    expect(tooltip).to_contain_text("Pikachu")

    # a Pikachu point away from the star: its tooltip shows the species' picture from the API
    pikachu = page.locator('.vega-embed path[aria-label*="; title: Pikachu;"]').all()
    farthest = max(pikachu, key=lambda point: math.dist((x, y), _centre(point)))
    farthest.hover()
    picture = tooltip.locator("img")
    expect(picture).to_have_attribute("src", f"{stack.api}/v1/species/pikachu/image")
    expect(tooltip.locator("h2")).to_have_text("Pikachu")
    page.wait_for_function(
        f"document.querySelector('{TOOLTIP} img')?.naturalWidth > 0", timeout=30_000
    )
    page.screenshot(path=stack.shots / "ui-explore-upload.png")
    page.close()


def test_the_model_page_times_the_upload(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    _recognize_then_open(page, stack, "Model")
    expect(page.get_by_role("heading", name="How often it is right")).to_be_visible()
    expect(page.get_by_text("Your last picture")).to_be_visible()
    _settled(page)
    main = page.get_by_test_id("stMain")
    for raw in ("acc_top1", "threshold", "p50"):  # raw names stay folded away
        assert raw not in main.inner_text()
    page.get_by_text("The exact figures").click()
    expect(page.get_by_text("the rule for “not a Pokémon”")).to_be_visible()
    _no_traceback(page)
    page.close()
