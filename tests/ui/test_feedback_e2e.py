"""End to end, the feedback loop (issue 22) in Chromium against the real API and UI on
127.0.0.1: a photo uploaded with "keep my photo" on, corrected to the species it shows, picked from
the list, the confirmation, the verdict on the Model page; then `pokedex data feedback review`,
`export`, `pokedex data prepare --feedback` and `pokedex data report` find the photo, without
its metadata, in the data. On a phone, a pasted picture confirmed with one tap.

The model is the colour Pokédex fixture, served with a gallery of its sprites and a prediction
log in the test's folder. Screenshots go to ``$POKEDEX_UI_SCREENSHOTS`` (docs/img for the docs)
or to pytest's temp folder.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.conftest import write_raw
from tests.ui.bundle import BY_NAME, sprite, write_colour_bundle
from tests.ui.test_dex_e2e import _gallery
from tests.ui.test_e2e import (
    DESKTOP,
    PHONE,
    Running,
    _no_traceback,
    _page,
    _settled,
    _shoot,
    browser,
    started_stack,
)
from tests.ui.test_recognize_e2e import CLIPBOARD, _answer, _copy_image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
__all__ = ["browser"]  # the shared Chromium fixture

KEEP = "Keep my photo to improve the Pokédex"
VERDICT = ".st-key-pokedex-verdict"
CLI_S = 600  # a ceiling: a loaded 2-core box takes a while to start Python


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`pokedex serve` (colour Pokédex, a gallery, a prediction log) and `pokedex ui`."""
    work = tmp_path_factory.mktemp("feedback-e2e")
    bundle = write_colour_bundle(work / "bundle")
    gallery = _gallery(work / "processed")
    env = {"POKEDEX_GALLERY": str(gallery), "POKEDEX_PREDICTION_LOG_URL": _store(work)}
    with started_stack(bundle, work, env) as stack:
        yield stack
        assert "Traceback" not in (work / "ui.log").read_text(errors="replace")


def _store(work: Path) -> str:
    return f"sqlite:///{work / 'predictions.db'}"


def _photo(path: Path) -> Path:
    """A phone photo of a Pikachu toy, as far as the test goes: the sprite on a grey-green
    scene, a JPEG whose EXIF names the camera and the place it was taken."""
    scene = Image.new("RGB", (480, 360), (120, 140, 110))
    toy = sprite(BY_NAME["pikachu"]).resize((256, 256))
    scene.paste(toy, (112, 52), mask=toy)  # the sprite's transparency: the scene shows through
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS
    scene.save(path, "JPEG", quality=90, exif=exif)
    assert Image.open(path).getexif()[0x010F] == "PhoneMaker"
    return path


def _pokedex(*args: str | Path) -> str:
    """Run the `pokedex` CLI with no POKEDEX_* settings of this shell; its output."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POKEDEX_")}
    command = [str(Path(sys.executable).with_name("pokedex")), *map(str, args)]
    done = subprocess.run(command, env=clean, capture_output=True, text=True, timeout=CLI_S)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _pick(page: Page, query: str, option: str) -> None:
    """Search the verdict's species list and choose ``option``."""
    page.locator(VERDICT).get_by_test_id("stSelectbox").click()
    page.keyboard.type(query)
    page.get_by_role("option", name=option).click()


def test_correct_a_photo_and_find_it_in_the_data(browser: Browser, stack: Running) -> None:
    page = _page(browser, viewport=DESKTOP)
    page.goto(stack.ui)
    keep = page.get_by_text(KEEP, exact=True)
    expect(keep).to_be_visible()
    expect(page.get_by_text("without its metadata (place, camera, date)")).to_be_visible()
    keep.click()  # off by default: chosen before the photo goes
    _settled(page)
    page.locator("input[type=file]").set_input_files(str(_photo(stack.work / "photo.jpg")))
    box = page.locator(VERDICT)
    expect(box.get_by_text("Is this right?")).to_be_visible()
    _settled(page)
    reference = page.get_by_text(re.compile(r"the reference [0-9a-f-]{36}"))
    expect(reference).to_be_visible()
    [pid] = re.findall(r"reference ([0-9a-f-]{36})", reference.inner_text())

    # the right species from the searchable list, its picture beside it
    _pick(page, "pika", "Pikachu #025")
    expect(box.locator("img.pokedex-picture[alt=Pikachu]")).to_be_visible()
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-feedback-pick.png")
    box.get_by_role("button", name="Send").click()
    confirmation = box.get_by_test_id("stAlertContentSuccess")
    expect(confirmation).to_contain_text("Thank you: recorded. It is Pikachu")
    expect(confirmation).to_contain_text("Your photo is kept with it")
    expect(box.get_by_role("button")).to_have_count(0)  # one verdict per answer
    expect(confirmation).to_contain_text("the Pokédex")
    _settled(page)
    _shoot(page, stack.shots / "ui-feedback-sent.png")
    _no_traceback(page)
    print(f"\n{confirmation.inner_text()} (prediction {pid})")

    # the Model page counts it
    page.goto(f"{stack.ui}/model")
    expect(page.get_by_role("heading", name="What users say")).to_be_visible()
    expect(page.get_by_text("users agreed with it")).to_be_visible()
    named = page.get_by_test_id("stMetric").filter(has_text="Named the species")
    expect(named).to_contain_text("1")
    expect(page.locator(".vega-embed")).to_have_count(1)  # by day
    _settled(page)
    _no_traceback(page)
    _shoot(page, stack.shots / "ui-model-feedback.png")
    page.close()

    # the data side: review, export, prepare with the feedback, the data report
    work, db = stack.work, _store(stack.work)
    _pokedex("data", "feedback", "review", pid, "--accept", "--db", db)
    exported = work / "feedback"
    _pokedex("data", "feedback", "export", "--db", db, "--out", exported)
    [row] = [r for r in _rows(exported / "manifest.csv") if r["prediction_id"] == pid]
    assert (row["species"], row["verdict"]) == ("pikachu", "species")
    kept = Image.open(exported / row["path"])
    assert not kept.getexif(), "the kept photo still carries its EXIF"
    assert max(kept.size) <= 512
    raw = write_raw(work / "raw", per_species=6)  # 12 species, Pikachu among them
    processed = work / "processed-feedback"
    args = ("--raw", raw.raw, "--out", processed, "--feedback", exported, "--workers", "1")
    _pokedex("data", "prepare", *args)
    [taken] = [r for r in _rows(processed / "manifest.csv") if r.get("source") == "feedback"]
    assert taken["species"] == "pikachu"
    assert taken["split"] in {"train", "val"}  # never test
    assert taken["path"].endswith(f"{row['sha256']}.webp")
    _pokedex("data", "report", "--processed", processed, "--out", work / "report")
    report = (work / "report" / "report.md").read_text(encoding="utf-8")
    feedback = report[report.index("## Feedback") :]
    assert re.search(
        r"1 exported images; added (1 to train and 0|0 to train and 1) to val", feedback
    )
    assert "over 1 species" in feedback


def test_on_a_phone_a_pasted_picture_is_confirmed_with_one_tap(
    browser: Browser, stack: Running
) -> None:
    page = _page(
        browser, viewport=PHONE, is_mobile=True, device_scale_factor=2, permissions=CLIPBOARD
    )
    page.goto(stack.ui)
    expect(page.get_by_role("button", name="Paste a picture")).to_be_visible()
    _settled(page)
    _copy_image(page, "charmander")
    page.get_by_role("button", name="Paste a picture").click()
    _answer(page, "Charmander #004")
    box = page.locator(VERDICT)
    yes = box.get_by_role("button", name="Yes, it is Charmander")
    yes.scroll_into_view_if_needed()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
    for part in (yes, box.get_by_test_id("stSelectbox"), box.get_by_role("button", name="Send")):
        edge = part.bounding_box()
        assert edge is not None
        assert edge["x"] >= 0
        assert edge["x"] + edge["width"] <= PHONE["width"], f"{part} runs off the screen"
    # what the phone shows: the guesses, then the question at the bottom of the screen
    box.evaluate("el => el.scrollIntoView({block: 'end'})")
    page.wait_for_timeout(300)
    page.screenshot(path=stack.shots / "ui-feedback-phone.png", full_page=False)
    yes.click()
    expect(box.get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "It is Charmander, as the Pokédex said"
    )
    _no_traceback(page)
    page.close()
