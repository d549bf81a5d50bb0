"""End to end: the real API and the real UI on 127.0.0.1, driven by headless Chromium.

The model is the committed release bundle (or the bundle ``$POKEDEX_UI_E2E_BUNDLE`` names)
when it has an ONNX file and the processed test split is here: a test image it gets right is
uploaded. Otherwise (or with ``POKEDEX_UI_E2E_BUNDLE=fixture``) it is the colour Pokédex
fixture, and its Pikachu sprite is uploaded. The test ids say which. Screenshots of every page
go to ``$POKEDEX_UI_SCREENSHOTS`` (``make screenshots`` sets docs/img) or to pytest's temp
folder.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pokedex.benchmarks.localserver import free_port, server_process
from tests.ui.bundle import BY_NAME, sprite, stranger, write_colour_bundle

# generous ceilings: on a loaded 2-core box, starting Python processes alone can take minutes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "models" / "release"
PROCESSED = ROOT / "data" / "processed"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
START_S = 900  # ceilings, not expectations: an idle 2-core box starts both in seconds


def screenshots(work: Path) -> Path:
    """Where a browser test saves its screenshots: ``$POKEDEX_UI_SCREENSHOTS`` or ``work``."""
    shots = Path(os.environ.get("POKEDEX_UI_SCREENSHOTS") or work / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@dataclass(frozen=True)
class Running:
    """A running API and UI, the folder they work in, and where screenshots go."""

    api: str
    ui: str
    work: Path
    shots: Path


@contextmanager
def started_stack(bundle: Path, work: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """:func:`running_stack`, yielded as one :class:`Running`."""
    with running_stack(bundle, work, env) as (api, ui):
        yield Running(api, ui, work, screenshots(work))


@contextmanager
def running_stack(
    bundle: Path, work: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """`pokedex serve` over ``bundle`` and `pokedex ui` pointed at it, on 127.0.0.1, as
    subprocesses with a clean ``POKEDEX_*`` environment (plus ``env``); yields both URLs."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POKEDEX_")}
    clean |= {"POKEDEX_PREDICTION_LOG_URL": "", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    pokedex = str(Path(sys.executable).with_name("pokedex"))
    api_port, ui_port = free_port(), free_port()
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    local = ("--host", "127.0.0.1")
    api_cmd = [pokedex, "serve", "--model", str(bundle), *local, "--port", str(api_port)]
    ui_cmd = [pokedex, "ui", *local, "--port", str(ui_port), "--api-url", api]
    started = functools.partial(
        server_process, env=clean | (env or {}), inherit_env=False, timeout=START_S
    )
    with (
        started(api_cmd, f"{api}/readyz", work / "api.log"),
        started(ui_cmd, f"{ui}/_stcore/health", work / "ui.log"),
    ):
        yield api, ui


ANSWER_MS = 300_000


FIXTURE = "fixture"
CHOSEN = os.environ.get("POKEDEX_UI_E2E_BUNDLE")
REAL_BUNDLE = Path(CHOSEN) if CHOSEN and CHOSEN != FIXTURE else RELEASE


def _real_bundle_usable() -> bool:
    """An exported model, and test images to find one it recognizes."""
    onnx = any((REAL_BUNDLE / f).is_file() for f in ("model.onnx", "model.int8.onnx"))
    data = ("classes.json", "test_images.npy", "test_labels.npy")
    return onnx and all((PROCESSED / f).is_file() for f in data)


if CHOSEN == FIXTURE or not _real_bundle_usable():
    MODEL_KIND = "colour-fixture-bundle"
else:
    MODEL_KIND = "chosen-bundle" if CHOSEN else "release-bundle"


@dataclass(frozen=True)
class Stack:
    """The running API and UI, and the picture whose answer is known."""

    api: str
    ui: str
    image: Path
    name: str
    display_name: str
    types: list[str]
    shots: Path


def _png(image: Image.Image, path: Path) -> Path:
    image.save(path, "PNG")
    return path


def _real_picture(api: str, folder: Path) -> tuple[Path, str]:
    """A test-split image the served model recognizes, as a PNG, and its species."""
    classes = json.loads((PROCESSED / "classes.json").read_text())
    images = np.load(PROCESSED / "test_images.npy", mmap_mode="r")  # (N, 128, 128, 4)
    labels = np.load(PROCESSED / "test_labels.npy")
    picks = np.linspace(0, len(labels) - 1, 32).astype(int)
    files = []
    for i in picks:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(images[i]), mode="RGBA").save(buf, "PNG")
        files.append(("files", (f"{i}.png", buf.getvalue(), "image/png")))
    items = httpx.post(f"{api}/v1/predict/batch", files=files, timeout=120).json()["items"]
    for i, item in zip(picks, items, strict=True):
        answer = item["prediction"]
        if answer and answer["known"] and answer["species"][0]["name"] == classes[labels[i]]:
            image = Image.fromarray(np.asarray(images[i]), mode="RGBA")
            return _png(image, folder / "test-image.png"), classes[labels[i]]
    pytest.fail("the served model recognized none of 32 test images")


@pytest.fixture(scope="module", params=[MODEL_KIND])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """`pokedex serve` and `pokedex ui` as subprocesses, stopped afterwards."""
    if CHOSEN not in (None, FIXTURE) and request.param != "chosen-bundle":
        pytest.fail(f"POKEDEX_UI_E2E_BUNDLE={CHOSEN} has no ONNX file or {PROCESSED} no test split")
    work = tmp_path_factory.mktemp("ui-e2e")
    shots = screenshots(work)
    real = request.param != "colour-fixture-bundle"
    bundle = REAL_BUNDLE if real else write_colour_bundle(work / "bundle")
    print(f"\nUI e2e model: {request.param} ({bundle}); screenshots in {shots}")
    # the fixture's answers with no gallery: a developer's data/processed/gallery holds the
    # dataset's sprites, which must not end up in the screenshots
    env = None if real else {"POKEDEX_GALLERY": ""}
    with running_stack(bundle, work, env) as (api, ui):
        if real:
            image, name = _real_picture(api, work)
        else:
            image, name = _png(sprite(BY_NAME["pikachu"]), work / "pikachu.png"), "pikachu"
        facts = httpx.get(f"{api}/v1/species/{name}", timeout=30).json()
        yield Stack(api, ui, image, name, facts["display_name"], facts["types"], shots)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    expect.set_options(timeout=ANSWER_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser: Browser, **options: object) -> Page:
    page = browser.new_page(**options)
    page.set_default_timeout(ANSWER_MS)
    return page


def _settled(page: Page) -> None:
    """Wait until Streamlit has finished running the script and charts have drawn."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.wait_for_timeout(1500)  # vega charts animate in after the script ends


def _shoot(page: Page, path: Path) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its own container, not the
    document, so the viewport is stretched to the content's height first.
    """
    viewport = page.viewport_size or DESKTOP
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": viewport["width"], "height": min(int(height), 6000)})
    _settled(page)
    page.screenshot(path=path)
    page.set_viewport_size(viewport)


def _no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert "Traceback" not in page.content()


def _expect_types(page: Page, types: list[str]) -> None:
    """The species' own type badges, in order (the counters' badges are another row)."""
    badges = page.locator(".pokedex-types .pokedex-type")
    expect(badges).to_have_count(len(types))
    assert badges.all_text_contents() == types


def _recognize(page: Page, stack: Stack) -> None:
    """Upload the known picture and check the species, its number and its type badges."""
    page.goto(stack.ui)
    page.locator("input[type=file]").set_input_files(str(stack.image))
    heading = page.get_by_role("heading", name=re.compile(re.escape(stack.display_name)))
    expect(heading.first).to_be_visible()
    _expect_types(page, stack.types)
    expect(page.get_by_text("As the model saw it")).to_be_visible()
    expect(page.locator("[data-testid=stProgress]")).to_have_count(5)
    _settled(page)
    _no_traceback(page)


def test_recognize_browse_explore_model(browser: Browser, stack: Stack) -> None:
    page = _page(browser, viewport=DESKTOP)
    _recognize(page, stack)
    _shoot(page, stack.shots / "ui-recognize.png")

    # a file that is not an image: the API's 400 as a sentence, not a traceback
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    expect(page.get_by_text("could not be read as an image")).to_be_visible()
    _no_traceback(page)

    page.goto(f"{stack.ui}/browse?species={stack.name}&type=fire")
    heading = page.get_by_role("heading", name=re.compile(re.escape(stack.display_name)))
    expect(heading.first).to_be_visible()
    _expect_types(page, stack.types)
    expect(page.get_by_text("Fire attacks are…")).to_be_visible()
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-browse.png")

    page.goto(f"{stack.ui}/explore")
    chart_or_note = page.locator(".vega-embed").or_(page.get_by_text("no embedding map"))
    expect(chart_or_note.first).to_be_visible()
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-explore.png")

    page.goto(f"{stack.ui}/model")
    expect(page.get_by_role("heading", name="How fast it answers")).to_be_visible()
    expect(page.get_by_role("link", name="API documentation")).to_have_attribute(
        "href", f"{stack.api}/docs"
    )
    expect(page.get_by_text("Typical answer", exact=True)).to_be_visible()  # our uploads timed
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-model.png")
    page.close()


def test_phone_width(browser: Browser, stack: Stack) -> None:
    page = _page(browser, viewport=PHONE, is_mobile=True, device_scale_factor=2)
    _recognize(page, stack)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
    _shoot(page, stack.shots / "ui-recognize-phone.png")
    page.close()


def test_rejects_a_picture_of_no_known_species(browser: Browser, stack: Stack) -> None:
    if MODEL_KIND != "colour-fixture-bundle":
        pytest.skip("only the fixture model is known to reject this picture")
    page = _page(browser, viewport=DESKTOP)
    page.goto(stack.ui)
    path = _png(stranger(), stack.image.with_name("stranger.png"))
    page.locator("input[type=file]").set_input_files(str(path))
    expect(page.get_by_text("does not look like a Pokémon I know")).to_be_visible()
    expect(page.locator(".pokedex-types")).to_have_count(0)
    _no_traceback(page)
    page.close()
