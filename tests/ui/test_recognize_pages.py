"""The Recognize page's ways in under AppTest (issue 23): the empty state, the examples to
click, one picture at a time. The paste itself needs a browser: tests/ui/test_recognize_e2e.py.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pokedex.benchmarks.localserver import free_port
from pokedex.core.schemas import SpeciesSummary
from pokedex.ui.examples import COUNT, candidates
from tests.conftest import encode
from tests.ui.bundle import BY_NAME, SPECIES, sprite
from tests.ui.conftest import FakeApi, MakeApp, prediction

PICTURES = {e.name: encode(sprite(e), "WEBP") for e in SPECIES}  # the gallery's WebPs
PNG = encode(sprite(BY_NAME["gengar"]), "PNG")


def _gallery(api: FakeApi, names: list[str]) -> None:
    for name in names:
        api.set("GET", f"/v1/species/{name}/image", PICTURES[name])


def _sent(api: FakeApi) -> list[bytes]:
    """The bodies of the predictions asked for, in order."""
    return [b for (m, p, _), b in zip(api.requests, api.bodies, strict=True) if p == "/v1/predict"]


def _text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def _example_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button if (b.key or "").startswith("example-")]


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_empty_state_says_what_to_do_and_what_you_get(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _gallery(fake_api, [e.name for e in SPECIES])
    at = make_app().run()
    _clean(at)
    welcome = at.markdown[0].value
    for promise in ("species", "five likeliest", "probabilities", "types", "base stats", "beat"):
        assert promise in welcome
    for way_in in ("Drop a picture", "paste", "Ctrl+V", "camera", "example"):
        assert way_in in welcome
    assert at.file_uploader[0].label == "Upload or drop a picture"
    assert at.toggle[0].label == "Use the camera"
    assert "Or try one of these" in _text(at)
    # favourites first, then the Pokédex evenly: six pictures, each a button
    assert _example_buttons(at) == [
        "Pikachu", "Charmander", "Bulbasaur", "Squirtle", "Gengar", "Charizard"
    ]  # fmt: skip
    assert len(at.get("image")) == COUNT
    assert fake_api.calls("POST", "/v1/predict") == 0


def test_without_a_gallery_there_are_no_tiles_and_the_page_says_why(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    at = make_app().run()
    _clean(at)
    assert "No example pictures on this server" in _text(at)
    assert "pokedex data gallery" in _text(at)
    assert not _example_buttons(at)
    assert not at.get("image")


def test_species_without_a_picture_are_skipped(make_app: MakeApp, fake_api: FakeApi) -> None:
    _gallery(fake_api, ["snorlax", "geodude"])
    at = make_app().run()
    _clean(at)
    assert _example_buttons(at) == ["Geodude", "Snorlax"]
    assert len(at.get("image")) == 2


def test_examples_with_the_api_down_say_so_and_the_page_still_works(make_app: MakeApp) -> None:
    at = make_app(api_url=f"http://127.0.0.1:{free_port()}").run()
    assert not at.exception
    assert "No examples to show: Cannot reach the Pokédex API" in _text(at)
    assert at.file_uploader  # the other ways in are still there


def test_clicking_an_example_answers_it_like_an_upload(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _gallery(fake_api, [e.name for e in SPECIES])
    at = make_app().run()
    at.file_uploader[0].set_value(("mine.png", PNG, "image/png")).run()
    assert fake_api.calls("POST", "/v1/predict") == 1
    at.button(key="example-pikachu").click().run()
    _clean(at)
    assert fake_api.calls("POST", "/v1/predict") == 2
    assert PICTURES["pikachu"] in _sent(fake_api)[-1]  # the example's own bytes went to the API
    assert at.subheader[0].value == "Pikachu #025"
    assert len(at.get("progress")) == 5
    captions = [c for image in at.get("image") for c in image.captions if c]
    assert captions == ["The example", "As the model saw it: 64×64, background flattened"]
    assert "Show the Pokédex a Pokémon" not in _text(at)  # no longer the empty state
    # one picture at a time: the earlier upload is gone from its widget
    assert at.file_uploader[0].value is None
    # the examples stay at hand, folded below the answer
    assert at.expander[-1].label == "Try an example"
    assert "Charmander" in _example_buttons(at)
    at.run()
    assert fake_api.calls("POST", "/v1/predict") == 2  # reruns reuse the answer


def test_an_upload_after_an_example_replaces_it(make_app: MakeApp, fake_api: FakeApi) -> None:
    _gallery(fake_api, [e.name for e in SPECIES])
    at = make_app().run()
    at.button(key="example-charmander").click().run()
    fake_api.set("POST", "/v1/predict", prediction([("gengar", 0.9), ("snorlax", 0.1)]))
    at.file_uploader[0].set_value(("mine.png", PNG, "image/png")).run()
    _clean(at)
    assert PNG in _sent(fake_api)[-1]
    assert at.subheader[0].value == "Gengar #094"
    captions = [c for image in at.get("image") for c in image.captions if c]
    assert captions[0] == "Your picture"


def test_removing_the_upload_brings_back_the_empty_state(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    at = make_app().run()
    at.file_uploader[0].set_value(("mine.png", PNG, "image/png")).run()
    assert at.subheader
    at.file_uploader[0].set_value(None).run()
    _clean(at)
    assert not at.subheader
    assert "Show the Pokédex a Pokémon and it names it" in at.markdown[0].value


def _summary(name: str, number: int) -> SpeciesSummary:
    return SpeciesSummary(name=name, display_name=name.title(), national_number=number, types=[])


@pytest.mark.parametrize("count", [1, 4, 12])
def test_candidates_are_favourites_then_the_pokedex_evenly(count: int) -> None:
    index = [_summary(f"mon{i}", i) for i in range(1, 101)]
    index[24] = _summary("pikachu", 25)
    index[93] = _summary("gengar", 94)
    picked = [s.name for s in candidates(index, count)]
    assert len(picked) == count
    assert len(set(picked)) == count
    assert picked[: min(count, 2)] == ["pikachu", "gengar"][: min(count, 2)]
    numbers = [s.national_number for s in candidates(index, count)][2:]
    assert numbers == sorted(numbers)  # the rest in Pokédex order, spread out
    if count == 12:
        assert numbers[0] == 1
        assert numbers[-1] > 85


def test_candidates_of_a_small_pokedex_are_all_of_it() -> None:
    index = [_summary(n, i) for i, n in enumerate(("eevee", "ditto", "mew"), start=1)]
    assert [s.name for s in candidates(index, 12)] == ["eevee", "ditto", "mew"]
