"""The feedback loop in the UI under AppTest (issue 22): "Is this right?" under every answer
(yes, another species picked from a searchable list with its picture, not a Pokémon), one
verdict per answer, the API's refusals in words, the choice to keep the photo, and what users
said on the Model page. In Chromium, with the real API: tests/ui/test_feedback_e2e.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from pokedex.core.schemas import FeedbackAccuracy
from tests.conftest import encode
from tests.ui.bundle import BY_NAME, sprite
from tests.ui.conftest import PIKACHU, PREDICTION_ID, FakeApi, MakeApp, prediction
from tests.ui.test_pages import _clean, _texts, _upload

FEEDBACK = "/v1/feedback"
SHA = "ab" * 32
SEND = f"verdict-send-{PREDICTION_ID}"
PICK = f"verdict-pick-{PREDICTION_ID}"
YES = f"verdict-correct-{PREDICTION_ID}"
NONE = f"verdict-none-{PREDICTION_ID}"


def _recorded(
    fake_api: FakeApi, verdict: str, species: str | None, agrees: bool, **reply: Any
) -> None:
    """The fake API records the next verdict as this one."""
    body = {
        "prediction_id": PREDICTION_ID,
        "verdict": verdict,
        "species": species,
        "agrees": agrees,
        "received_at": "2026-12-05T00:00:00Z",
    }
    fake_api.set("POST", FEEDBACK, body, status=201, **reply)


def _verdicts(fake_api: FakeApi) -> list[dict[str, str]]:
    return [json.loads(body) for body in fake_api.sent("POST", FEEDBACK)]


def _buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button if (b.key or "").startswith("verdict-")]


def _confirmation(at: AppTest) -> str:
    [success] = at.success
    return success.value


def test_yes_records_it_and_the_confirmation_replaces_the_buttons(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _recorded(fake_api, "correct", "pikachu", agrees=True)
    at = _upload(make_app().run())
    _clean(at)
    assert "**Is this right?**" in _texts(at)
    assert _buttons(at) == ["Yes, it is Pikachu", "No, it is not a Pokémon", "Send"]
    assert at.selectbox(key=PICK).label == "No, it is…"
    at.button(key=YES).click().run()
    _clean(at)
    assert _verdicts(fake_api) == [{"prediction_id": PREDICTION_ID, "verdict": "correct"}]
    confirmation = _confirmation(at)
    assert "Thank you: recorded." in confirmation
    assert "It is Pikachu, as the Pokédex said." in confirmation
    assert "The photo was not kept" in confirmation
    assert not _buttons(at)  # one verdict per answer
    assert not at.selectbox
    at.run()  # a rerun shows the confirmation again, and sends nothing
    assert "It is Pikachu" in _confirmation(at)
    assert fake_api.calls("POST", FEEDBACK) == 1
    assert at.subheader[0].value == "Pikachu #025"  # the answer itself stays


def test_pick_the_right_species_from_the_list_with_its_picture(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    fake_api.set("GET", "/v1/species/charmander/image", encode(sprite(BY_NAME["charmander"])))
    _recorded(fake_api, "species", "charmander", agrees=False)
    at = _upload(make_app().run())
    picker = at.selectbox(key=PICK)
    assert picker.value is None  # nothing picked for you
    assert len(picker.options) == 9  # every species the API lists, by display name and number
    assert "Charmander #004" in picker.options
    assert at.button(key=SEND).disabled
    picker.select("charmander").run()
    _clean(at)
    pictures = [m.value for m in at.markdown if 'class="pokedex-picture"' in m.value]
    assert any('alt="Charmander"' in p and 'src="data:image/webp' in p for p in pictures)
    assert not at.button(key=SEND).disabled
    at.button(key=SEND).click().run()
    _clean(at)
    assert _verdicts(fake_api) == [{"prediction_id": PREDICTION_ID, "verdict": "charmander"}]
    assert "It is Charmander; the Pokédex said Pikachu." in _confirmation(at)


def test_not_a_pokemon_on_a_named_answer(make_app: MakeApp, fake_api: FakeApi) -> None:
    _recorded(fake_api, "not_pokemon", None, agrees=False)
    at = _upload(make_app().run())
    at.button(key=NONE).click().run()
    _clean(at)
    assert _verdicts(fake_api)[0]["verdict"] == "not_pokemon"
    assert "It is not a Pokémon; the Pokédex said Pikachu." in _confirmation(at)


def test_a_refused_picture_asks_whether_it_is_right_to_refuse_it(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU, known=False))
    _recorded(fake_api, "not_pokemon", None, agrees=True)
    at = _upload(make_app().run())
    _clean(at)
    assert "does not look like a Pokémon I know" in _texts(at)
    assert _buttons(at) == ["Yes, it is not a Pokémon", "Send"]
    assert at.selectbox(key=PICK).label == "It is a Pokémon:"
    at.button(key=NONE).click().run()
    assert _verdicts(fake_api)[0]["verdict"] == "not_pokemon"
    assert "It is not a Pokémon, as the Pokédex said." in _confirmation(at)


def test_an_example_takes_a_verdict_too(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/species/pikachu/image", encode(sprite(BY_NAME["pikachu"]), "WEBP"))
    _recorded(fake_api, "correct", "pikachu", agrees=True)
    at = make_app().run()
    at.toggle(key="keep_photo").set_value(True).run()
    at.button(key="example-pikachu").click().run()
    _clean(at)
    [(_, _, query)] = [r for r in fake_api.requests if r[1] == "/v1/predict"]
    assert "keep_image" not in query  # an example is the server's own picture, not yours
    assert "not kept" not in _texts(at)
    at.button(key=YES).click().run()
    assert "It is Pikachu, as the Pokédex said." in _confirmation(at)


@pytest.mark.parametrize(
    ("status", "retry_after", "words", "final"),
    [
        (429, "12", "Too many verdicts from here just now: try again in 12 s.", False),
        (409, "1", "The Pokédex is still recording this answer: try again in 1 s.", False),
        (422, None, "The Pokédex does not know that species: pick one from the list.", False),
        (503, "30", "The Pokédex is busy or still starting: try again in a moment", False),
        (409, None, "This answer already has a verdict: one per answer.", True),
        (404, None, "The Pokédex has no record of this answer", False),
    ],
)
def test_a_refusal_is_a_sentence_and_a_retry_goes_through(
    make_app: MakeApp,
    fake_api: FakeApi,
    status: int,
    retry_after: str | None,
    words: str,
    final: bool,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    fake_api.set("POST", FEEDBACK, {"detail": "no"}, status=status, headers=headers)
    at = _upload(make_app().run())
    at.button(key=YES).click().run()
    assert not at.exception
    assert not at.success
    if final:  # the answer has its verdict already: nothing left to send
        [warning] = at.warning
        assert words in warning.value
        assert not _buttons(at)
        return
    [error] = at.error
    assert words in error.value
    assert str(status) not in error.value
    assert _buttons(at)  # the buttons stay for another try
    _recorded(fake_api, "correct", "pikachu", agrees=True)
    at.button(key=YES).click().run()
    _clean(at)
    assert not at.error
    assert "It is Pikachu" in _confirmation(at)


def test_an_answer_without_an_id_asks_nothing(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU, id=None))
    at = _upload(make_app().run())
    _clean(at)
    assert at.subheader[0].value == "Pikachu #025"
    assert "Is this right?" not in _texts(at)
    assert not _buttons(at)


def test_keeping_the_photo_is_off_unless_chosen_and_says_what_it_means(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    at = make_app().run()
    keep = at.toggle(key="keep_photo")
    assert keep.label == "Keep my photo to improve the Pokédex"
    assert keep.value is False
    text = _texts(at)
    assert "without its metadata (place, camera, date)" in text
    assert "to have it deleted" in text
    _upload(at)
    [(_, _, query)] = [r for r in fake_api.requests if r[1] == "/v1/predict"]
    assert "keep_image" not in query
    assert "photo is kept" not in _texts(at)
    assert "not kept" not in _texts(at)  # nothing to say about a photo you did not offer

    # chosen after the picture was sent: the page says this one was not kept
    at.toggle(key="keep_photo").set_value(True).run()
    assert "it was sent before you chose to keep it" in _texts(at)
    assert fake_api.calls("POST", "/v1/predict") == 1  # not sent again behind your back

    # the next picture is kept, with the reference that has it deleted
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU, image_sha256=SHA))
    _recorded(fake_api, "correct", "pikachu", agrees=True)
    _upload(at, encode(sprite(BY_NAME["charizard"]), "PNG"), "mine.png")
    _clean(at)
    queries = [q for _, p, q in fake_api.requests if p == "/v1/predict"]
    assert queries[-1]["keep_image"] == ["true"]
    assert f"give whoever runs this Pokédex the reference {PREDICTION_ID}" in _texts(at)
    at.button(key=YES).click().run()
    assert "Your photo is kept with it, to teach the next model." in _confirmation(at)


def test_the_keep_choice_survives_a_visit_to_another_page(make_app: MakeApp) -> None:
    at = make_app().run()
    at.toggle(key="keep_photo").set_value(True).run()
    at.switch_page("views/browse.py").run()
    at.switch_page("views/recognize.py").run()
    _clean(at)
    assert at.toggle(key="keep_photo").value is True


def test_the_keep_choice_asked_but_refused(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = make_app().run()
    at.toggle(key="keep_photo").set_value(True).run()
    _upload(at)  # the API answers without a kept copy
    assert "The Pokédex did not keep this photo" in _texts(at)


MODEL = "views/model.py"
SAID = FeedbackAccuracy(
    window="500",
    verdicts=8,
    agreeing=6,
    accuracy=0.75,
    by_verdict={"correct": 5, "species": 2, "not_pokemon": 1},
)


def _model_page(make_app: MakeApp) -> AppTest:
    at = make_app().run().switch_page(MODEL).run()
    _clean(at)
    return at


def test_the_model_page_says_what_users_said(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/monitoring/feedback", SAID)
    at = _model_page(make_app)
    assert "What users say" in [s.value for s in at.subheader]
    text = _texts(at)
    assert "So far, users agreed with it **6 times out of 8**." in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Right, say users"] == "75%"
    assert metrics["“Yes, it is”"] == "5"
    assert metrics["Named the species"] == "2"
    assert metrics["“Not a Pokémon”"] == "1"
    # by day: the fake answers every window alike, so all 8 fall in the last 24 hours
    [chart] = at.get("vega_lite_chart")
    assert "verdicts" in chart.proto.spec
    assert "The last 14 days" in text
    windows = [q.get("window") for _, p, q in fake_api.requests if p == "/v1/monitoring/feedback"]
    assert windows[0] is None  # the server's own window first
    assert sorted(w[0] for w in windows[1:]) == sorted(f"{n}d" for n in range(1, 15))
    [table] = (df.value for df in at.expander[0].dataframe)
    figures = dict(zip(table["figure"], table["value"], strict=True))
    assert figures["feedback/accuracy"] == "75.0%"
    assert figures["feedback/species"] == "2"


def test_your_verdict_counts_on_the_model_page_at_once(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _recorded(fake_api, "correct", "pikachu", agrees=True)
    at = _upload(make_app().run())  # the page has read the (cached) figures: no verdict yet
    at.switch_page(MODEL).run()
    assert "Nobody has answered yet." in _texts(at)
    at.switch_page("views/recognize.py").run()
    fake_api.set("GET", "/v1/monitoring/feedback", SAID)
    at.button(key=YES).click().run()
    at.switch_page(MODEL).run()
    _clean(at)
    assert "users agreed with it **6 times out of 8**" in _texts(at)


def test_a_duration_window_is_named(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("GET", "/v1/monitoring/feedback", SAID.model_copy(update={"window": "7d"}))
    assert "Over the last 7 days, users agreed" in _texts(_model_page(make_app))


def test_the_model_page_before_any_verdict(make_app: MakeApp, fake_api: FakeApi) -> None:
    at = _model_page(make_app)  # the fake API's log holds no verdict yet
    assert "Nobody has answered yet." in _texts(at)
    assert "Right, say users" not in {m.label for m in at.metric}
    assert not at.get("vega_lite_chart")
    assert fake_api.calls("GET", "/v1/monitoring/feedback") == 1  # no series to ask for


def _no_log(fake_api: FakeApi) -> None:
    """The API's prediction log is off: its feedback routes answer 404."""
    detail = {"detail": "the prediction log is off (POKEDEX_PREDICTION_LOG_URL is empty)"}
    fake_api.set("GET", "/v1/monitoring/feedback", detail, status=404)
    fake_api.set("POST", FEEDBACK, detail, status=404)


def test_the_model_page_with_no_prediction_log(make_app: MakeApp, fake_api: FakeApi) -> None:
    _no_log(fake_api)
    at = _model_page(make_app)
    assert "keeps no record of its answers, so it takes no verdicts" in _texts(at)
    assert "Typical answer" in {m.label for m in at.metric}  # the rest of the page stays


def test_without_a_prediction_log_nothing_is_asked_or_offered(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _no_log(fake_api)
    at = _upload(make_app().run())
    _clean(at)
    assert at.subheader[0].value == "Pikachu #025"  # the answer, as before
    assert "Is this right?" not in _texts(at)
    assert not _buttons(at)
    assert [t.label for t in at.toggle] == ["Use the camera"]  # nothing to keep a photo for
    assert "without its metadata" not in _texts(at)
    [(_, _, query)] = [r for r in fake_api.requests if r[1] == "/v1/predict"]
    assert "keep_image" not in query
