"""The Model page under AppTest: a fan's words up front, every figure one the API serves, the
raw names folded away, and nothing said about figures a bundle lacks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest

from pokedex.core.schemas import ModelInfo, OpenSetInfo
from tests.ui.conftest import MODEL, FakeApi, MakeApp
from tests.ui.test_pages import _clean, _texts, _upload

PAGE = "views/model.py"
RELEASE_LIKE = {
    "test/acc_top1": 0.9157,
    "test/acc_top5": 0.9686,
    "photos/acc_top1": 0.5503,
    "photos/acc_top5": 0.7134,
    "photos/n": 1361.0,
}


def _model(fake_api: FakeApi, **fields: object) -> None:
    """The fake API's /v1/model answer with ``fields`` replaced."""
    info = ModelInfo(
        **MODEL.model_dump(),
        num_classes=9,
        input_size=64,
        background=(255, 255, 255),
        open_set=None,
        metrics={},
        loaded_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
    )
    fake_api.set("GET", "/v1/model", info.model_copy(update=fields))


def _open(make_app: MakeApp) -> AppTest:
    at = make_app().run().switch_page(PAGE).run()
    _clean(at)
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _outside_the_expander(at: AppTest) -> str:
    [expander] = at.expander
    inside = {id(e.proto) for e in (*expander.markdown, *expander.caption)}
    parts = [
        e.value for e in (*at.markdown, *at.caption, *at.subheader) if id(e.proto) not in inside
    ]
    return "\n".join(parts + list(_metrics(at)))


def test_the_page_speaks_a_fans_words(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POKEDEX_API_PUBLIC_URL", "https://dex.example.org")
    at = _open(make_app)  # the fake serves test/ figures, an energy rule, confusions
    text = _texts(at)
    assert "names **9 species**" in text
    assert "**pokedex-colours**, version t1" in text
    assert "[API documentation](https://dex.example.org/docs)" in text
    metrics = _metrics(at)
    assert metrics["Right on game pictures"] == "91%"
    assert "Right first time on game sprites and artwork" in text
    assert "among its first five guesses 99% of the time" in text
    assert "Right on real photos" not in metrics  # the bundle has no photo figures
    assert "less than 50%, the answer opens with “Not sure”" in text
    assert "when a picture is too unlike every species it learned" in text  # energy: no %
    assert "Non-Pokémon turned away" not in metrics  # no measured rates in this bundle
    # the mix-ups, in display names, linked to Browse
    assert "taken for" in text
    assert "](browse?species=" in text
    # 5 predictions of 4, 20, 20, 30 and 200 ms: p50 inside the 10-25 ms bucket
    assert metrics["Typical answer"] == "21 ms"
    assert "each of the 5 pictures (half were quicker than the typical answer)" in text
    user_words = _outside_the_expander(at)
    for raw in ("acc_top1", "test/", "threshold", "Open-set", "-0.5", "p50", "energy"):
        assert raw not in user_words


def test_the_exact_figures_keep_their_raw_names(make_app: MakeApp) -> None:
    at = _open(make_app)
    [expander] = at.expander
    assert expander.label == "The exact figures"
    [table] = (df.value for df in expander.dataframe)
    figures = dict(zip(table["figure"], table["value"], strict=True))
    assert figures["test/acc_top1"] == "91.2%"
    assert figures["test/loss"] == "0.3051"
    assert figures["open_set/score"] == "energy"
    assert figures["open_set/threshold"] == "-0.5"
    assert figures["predict/mean_ms"] == "54.8"
    assert figures["predict/count"] == "5"
    assert "fp32 ONNX file" in expander.markdown[0].value
    assert "mirror image" not in expander.markdown[0].value


def test_the_exact_figures_say_when_the_model_averages_mirror_images(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    _model(fake_api, flip_average=True)
    [expander] = _open(make_app).expander
    assert "each picture averaged with its mirror image" in expander.markdown[0].value


def test_photos_and_refusal_rates_when_the_bundle_has_them(
    make_app: MakeApp, fake_api: FakeApi
) -> None:
    rule = OpenSetInfo(score="msp", threshold=0.402, false_accept=0.0167, false_reject=0.0384)
    _model(fake_api, metrics=RELEASE_LIKE, open_set=rule)
    at = _open(make_app)
    metrics = _metrics(at)
    assert metrics["Right on game pictures"] == "92%"
    assert metrics["Right on real photos"] == "55%"
    assert metrics["Non-Pokémon turned away"] == "98%"
    assert metrics["Pokémon wrongly turned away"] == "3.8%"
    text = _texts(at)
    assert "1,361 real photos, toys and drawings" in text
    assert "when its best guess gets less than 40%" in text  # msp: the threshold is a probability
    assert "real photos, with their backgrounds, light and angles, are harder" in text


def test_what_the_bundle_lacks_is_left_out(make_app: MakeApp, fake_api: FakeApi) -> None:
    _model(fake_api)  # no metrics, no open-set rule, no confusions
    at = _open(make_app)
    subheaders = [s.value for s in at.subheader]
    assert "How often it is right" not in subheaders
    assert "Species it mixes up" not in subheaders
    assert "no rule for turning a picture away" in _texts(at)
    assert set(_metrics(at)) == {"Typical answer", "95 answers in 100 within"}


def test_your_last_picture_is_timed(make_app: MakeApp) -> None:
    at = _upload(make_app().run())  # the fake answers in 12.5 ms
    at.switch_page(PAGE).run()
    _clean(at)
    assert _metrics(at)["Your last picture"] == "12 ms"
