"""End to end, the dex side: species facts, pictures, top-5 links, number search and the type
chart, with the real API and UI on 127.0.0.1 driven by headless Chromium.

The model is the colour Pokédex fixture, its catalog given the facts a version 2 catalog holds
(size, abilities, evolution line), and a gallery built by `build_gallery` from its sprites, with
Snorlax left out to show the placeholder. Screenshots go to ``$POKEDEX_UI_SCREENSHOTS``
(docs/img for the docs) or to pytest's temp folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from pokedex.data.gallery import build_gallery
from tests.dex.facts import add_charizard_facts
from tests.ui.bundle import BY_NAME, SPECIES, sprite, write_colour_bundle
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

NO_PICTURE = "snorlax"


def _dex_bundle(path: Path) -> Path:
    """The colour Pokédex, with a version 2 catalog: charizard's line, size and abilities."""
    return add_charizard_facts(write_colour_bundle(path))


def _gallery(processed: Path) -> Path:
    """`build_gallery` over a processed folder holding each species' sprite, then Snorlax's
    picture removed from the manifest."""
    processed.mkdir()
    names = [e.name for e in SPECIES]
    (processed / "classes.json").write_text(json.dumps(names))
    rows = ["path,sha256,species,label,split,width,height,mode,has_alpha"]
    rows += [f"{n}/{n}.png,x,{n},{i},train,128,128,RGBA,1" for i, n in enumerate(names)]
    (processed / "manifest.csv").write_text("\n".join(rows) + "\n")
    canvases = np.stack([np.asarray(sprite(e)) for e in SPECIES])  # (C, 128, 128, 4)
    np.save(processed / "train_images.npy", canvases)
    gallery = build_gallery(processed)
    manifest = json.loads((gallery / "manifest.json").read_text())
    del manifest["species"][NO_PICTURE]
    (gallery / "manifest.json").write_text(json.dumps(manifest))
    return gallery


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`pokedex serve` (with the gallery) and `pokedex ui` as subprocesses."""
    work = tmp_path_factory.mktemp("dex-e2e")
    bundle = _dex_bundle(work / "bundle")
    gallery = _gallery(work / "processed")
    with started_stack(bundle, work, {"POKEDEX_GALLERY": str(gallery)}) as stack:
        yield stack


def _loaded_pictures(page: Page) -> int:
    """How many species pictures the browser has decoded."""
    return int(
        page.evaluate(
            "[...document.querySelectorAll('img.pokedex-picture')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length"
        )
    )


def test_browse_shows_facts_multipliers_and_picture(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    page.goto(f"{stack.ui}/browse?species=charizard")
    expect(page.get_by_role("heading", name="Charizard #006")).to_be_visible()
    title = page.get_by_role("heading", name="Browse", exact=True).bounding_box()
    nav = page.get_by_role("link", name="Recognize").bounding_box()
    assert title is not None
    assert nav is not None
    gap = title["y"] - (nav["y"] + nav["height"])
    assert 0 <= gap < 40  # below the navigation, with no empty band between them
    expect(page.get_by_text("1.7 m · 90.5 kg")).to_be_visible()
    expect(page.get_by_text("Blaze · Solar Power (hidden)")).to_be_visible()
    expect(page.locator(".pokedex-evolution li")).to_have_text(
        ["Charmander → Charmeleon · level 16", "Charmeleon → Charizard · level 36"]
    )
    for label in ("×4", "×2", "×½", "×¼", "×0"):
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    expect(page.locator(".pokedex-resisted .pokedex-type", has_text="ground")).to_be_visible()
    expect(page.locator("img.pokedex-picture")).to_be_visible()
    _settled(page)
    assert _loaded_pictures(page) == 1
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-dex-browse.png")

    # a species the gallery lacks: the placeholder, and the card otherwise whole
    page.goto(f"{stack.ui}/browse?species={NO_PICTURE}")
    expect(page.get_by_role("heading", name="Snorlax #143")).to_be_visible()
    expect(page.locator(".pokedex-no-picture")).to_be_visible()
    expect(page.get_by_label("No picture of Snorlax")).to_be_visible()
    _no_traceback(page)
    page.close()


def test_number_search_ranks_the_number_first(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    page.goto(f"{stack.ui}/browse")
    search = page.get_by_test_id("stSelectbox").first
    expect(search).to_be_visible()
    search.click()
    page.keyboard.type("6")
    options = page.get_by_role("option")
    expect(options.first).to_have_text(re.compile(r"^#006 Charizard"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Charizard #006")).to_be_visible()
    assert "species=charizard" in page.url
    _no_traceback(page)
    page.close()


def test_top5_shows_pictures_and_links_to_browse(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=PHONE, is_mobile=True, device_scale_factor=2)
    page.goto(stack.ui)
    image = _png(sprite(BY_NAME["pikachu"]), stack.work / "pikachu.png")
    page.locator("input[type=file]").set_input_files(str(image))
    expect(page.locator("[data-testid=stProgress]")).to_have_count(5)
    _settled(page)
    pictures = page.locator(".pokedex-picture")
    expect(pictures).to_have_count(5)
    # snorlax is in the fixture's top-5 of a pikachu sprite only when it ranks there: count both
    placeholders = page.locator(".pokedex-no-picture").count()
    assert _loaded_pictures(page) + placeholders == 5
    _shoot(page, stack.shots / "ui-dex-top5-phone.png")
    link = page.get_by_role("link", name="Pikachu", exact=True)
    expect(link).to_have_attribute("href", "browse?species=pikachu")
    page.goto(link.evaluate("a => a.href"))  # the link's own target, resolved by the browser
    expect(page.get_by_role("heading", name="Pikachu #025")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
    _no_traceback(page)
    page.close()


def test_type_chart_page(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    page.goto(stack.ui)
    page.get_by_role("link", name="Type chart").click()
    expect(page.locator(".pokedex-typechart .pokedex-cell")).to_have_count(18 * 18)
    expect(page.locator('.pokedex-cell[title="ground → flying: ×0"]')).to_have_text("0")
    expect(page.locator('.pokedex-cell[title="water → fire: ×2"]')).to_have_text("2")
    expect(page.locator('.pokedex-cell[title="fire → water: ×0.5"]')).to_have_text("½")
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-dex-typechart.png")
    page.close()
