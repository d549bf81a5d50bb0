"""The UI's pages under Streamlit's AppTest, with the API faked at the HTTP layer.

Every failure scenario must end in a readable message and never in a rendered exception.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from pokedex.benchmarks.localserver import free_port
from tests.conftest import encode
from tests.ui.bundle import BY_NAME, sprite
from tests.ui.conftest import PIKACHU, FakeApi, MakeApp, prediction

PNG = encode(sprite(BY_NAME["pikachu"]), "PNG")


def _upload(at: AppTest, data: bytes = PNG, name: str = "pika.png") -> AppTest:
    at.file_uploader[0].set_value((name, data, "image/png"))
    return at.run()


def _texts(at: AppTest) -> str:
    """Everything the page says in text, markdown, captions and alerts, as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.subheader)]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(parts)


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert "Traceback" not in _texts(at)


def _badge_rows(at: AppTest, kind: str) -> list[str]:
    return [m.value for m in at.markdown if f'class="pokedex-{kind}"' in m.value]


def test_recognize_waits_for_a_picture(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = make_app().run()
    _clean(at)
    assert "Show the Pokédex a Pokémon and it names it" in at.markdown[0].value
    assert fake_api.calls("POST", "/v1/predict") == 0


def test_recognize_shows_the_species_card(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = _upload(make_app().run())
    _clean(at)
    assert not [c.value for c in at.caption if "127.0.0.1" in c.value]  # no internal URL
    assert at.subheader[0].value == "Pikachu #025"
    [types] = _badge_rows(at, "types")
    assert ">electric</span>" in types
    assert "#F7D02C" in types  # electric's colour
    bars = at.get("progress")
    assert [b.proto.text.split("**")[1] for b in bars] == [
        BY_NAME[n].display_name for n, _ in PIKACHU
    ]
    assert [b.proto.value for b in bars] == [round(p * 100) for _, p in PIKACHU]
    text = _texts(at)
    assert BY_NAME["pikachu"].description in text  # the entry text from /v1/species
    assert "**×2**" in text
    assert ">ground</span>" in "".join(_badge_rows(at, "counters"))
    assert "answered in 12 ms" in text
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions == ["Your picture", "As the model saw it: 64×64, background flattened"]
    assert len(at.get("vega_lite_chart")) == 1  # base stats
    # reruns (any widget click) reuse the answer: one API call per picture
    at.run()
    assert fake_api.calls("POST", "/v1/predict") == 1
    _upload(at, encode(sprite(BY_NAME["charizard"]), "PNG"), "other.png")
    assert fake_api.calls("POST", "/v1/predict") == 2


def test_a_low_confidence_answer_says_it_is_a_guess(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = _upload(make_app().run())
    assert "Not sure" not in _texts(at)  # 62 %: a plain answer
    unsure = [("pikachu", 0.41), ("charmander", 0.33), ("jigglypuff", 0.1), ("geodude", 0.1),
              ("snorlax", 0.06)]  # fmt: skip
    fake_api.set("POST", "/v1/predict", prediction(unsure))
    at = _upload(make_app().run())
    _clean(at)
    [note] = [i.value for i in at.info if "Not sure" in i.value]
    assert "Pikachu is the best guess at 41%" in note
    assert "Charmander (33%)" in note
    assert at.subheader[0].value == "Pikachu #025"  # still the card: a guess, said as one


def test_recognize_says_when_it_is_no_known_pokemon(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU, known=False))
    at = _upload(make_app().run())
    _clean(at)
    assert "does not look like a Pokémon I know" in at.warning[0].value
    assert not _badge_rows(at, "types")
    assert not at.subheader  # no species card for a guess
    assert at.expander[0].label.startswith("What it looked most like")


def test_the_camera_is_an_input_too(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = make_app().run()
    assert not at.camera_input  # no camera prompt until asked for
    at.toggle[0].set_value(True).run()
    photo = encode(sprite(BY_NAME["pikachu"]).convert("RGB"), "JPEG")
    at.camera_input[0].set_value(("photo.jpg", photo, "image/jpeg")).run()
    _clean(at)
    assert at.subheader[0].value == "Pikachu #025"
    assert any(photo in body for body in fake_api.bodies)


@pytest.mark.parametrize(
    ("status", "detail", "says"),
    [
        (400, "the file could not be read as an image", "The file could not be read as an image"),
        (413, "the image is too large: 30000x30000", "The image is too large: 30000x30000"),
        (415, "GIF images are not supported", "GIF images are not supported"),
        (422, "the picture is 8×8 pixels, too small", "The picture is 8×8 pixels, too small"),
        (503, "model not ready: loading", "try again in a moment (model not ready: loading)"),
        (504, "prediction timed out", "took too long: try again in a moment (prediction timed"),
    ],
)
def test_api_errors_on_predict_are_sentences(
    make_app: MakeApp, fake_api: FakeApi, status: int, detail: str, says: str
) -> None:
    fake_api.set("POST", "/v1/predict", {"detail": detail}, status=status)
    at = _upload(make_app().run())
    _clean(at)
    [error] = at.error
    assert says in error.value
    assert "HTTP" not in error.value  # status codes are not for people
    assert len(at.get("image")) == 1  # the upload is shown, no model view for a failed answer
    assert fake_api.calls("POST", "/v1/predict") == 1


def test_unreachable_api(make_app: MakeApp) -> None:
    at = _upload(make_app(api_url=f"http://127.0.0.1:{free_port()}").run())
    _clean(at)
    assert "Cannot reach the Pokédex API" in at.error[0].value


def test_slow_api(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU), delay_s=2.0)
    at = _upload(make_app(timeout_s=0.5).run())
    _clean(at)
    assert "did not answer within 0.5 s" in at.error[0].value


def test_browse_finds_any_species(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = make_app().run().switch_page("views/browse.py").run()
    _clean(at)
    search = at.selectbox(key="species")
    assert search.label == "Search the 9 species by name or number"
    assert len(search.options) == 9
    assert "#006 Charizard" in search.options
    search.set_value("charizard").run()
    _clean(at)
    assert at.subheader[0].value == "Charizard #006"
    assert ">fire</span>" in _badge_rows(at, "types")[0]
    text = _texts(at)
    assert "**×4**" in text  # rock on fire/flying
    assert BY_NAME["charizard"].description in text
    assert "Generation 1" in text
    assert fake_api.calls("GET", "/v1/species") == 1  # the index is fetched once and cached


def test_browse_opens_the_species_in_the_url(make_app: MakeApp) -> None:
    at = make_app().run().switch_page("views/browse.py")
    at.query_params["species"] = "gengar"
    at.query_params["type"] = "fire"
    at.run()
    _clean(at)
    assert at.subheader[0].value == "Gengar #094"
    text = _texts(at)
    assert "**Fire attacks are…**" in text
    matchups = "".join(_badge_rows(at, "matchups"))
    assert all(f">{t}</span>" in matchups for t in ("bug", "steel", "grass", "ice"))


def test_browse_with_the_api_down(make_app: MakeApp) -> None:
    at = make_app(api_url=f"http://127.0.0.1:{free_port()}").run()
    at.switch_page("views/browse.py").run()
    _clean(at)
    assert "Cannot reach the Pokédex API" in at.error[0].value


def test_a_bug_shows_a_message_not_a_traceback(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("pokedex.ui.cards.matchups", broken)
    at = make_app().run().switch_page("views/browse.py").run()
    _clean(at)
    assert "Something went wrong" in at.error[0].value
    assert "a bug" not in _texts(at)


def test_explore_draws_the_map_and_filters_species(make_app: MakeApp) -> None:
    at = make_app().run().switch_page("views/explore.py").run()
    _clean(at)
    [chart] = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["layer"][1]["encoding"]["color"]["scale"]["range"][9] == "#EE8130"  # fire
    assert "216 test images of 9 species" in _texts(at)
    at.multiselect(key="highlight").set_value(["Pikachu"]).run()
    _clean(at)
    assert "of the 24 shown are predicted correctly" in _texts(at)


def test_explore_without_a_map_says_how_to_make_one(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/model/embeddings", {"detail": "no map"}, status=404)
    at = make_app().run().switch_page("views/explore.py").run()
    _clean(at)
    assert "pokedex evaluate --model <bundle> --embeddings" in at.info[0].value
    assert not at.get("vega_lite_chart")


def test_model_page_with_the_api_down(make_app: MakeApp) -> None:
    at = make_app(api_url=f"http://127.0.0.1:{free_port()}").run()
    at.switch_page("views/model.py").run()
    _clean(at)
    assert "Cannot reach the Pokédex API" in at.error[0].value
