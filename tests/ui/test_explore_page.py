"""Explore under AppTest: the last recognised picture on the embedding map, and species
pictures in the hover tooltips when the API has a gallery."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.bundle import embedding_map, sprite_means
from tests.ui.conftest import MODEL, PIKACHU, FakeApi, MakeApp, prediction
from tests.ui.test_pages import _clean, _upload

EXPLORE = "views/explore.py"


def _layers(at: AppTest) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Each layer of the map's spec with its data."""
    [chart] = at.get("vega_lite_chart")
    data = {
        d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets
    }
    return [(layer, data[layer["data"]["name"]]) for layer in json.loads(chart.proto.spec)["layer"]]


def _star(at: AppTest) -> pd.DataFrame | None:
    """The data of the layer that marks the user's picture, None when there is none."""
    marked = [
        frame
        for layer, frame in _layers(at)
        if layer["encoding"].get("description") == {"value": "Your picture"}
    ]
    assert len(marked) <= 1
    return marked[0] if marked else None


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_the_last_picture_is_placed_among_its_top_species(make_app: MakeApp) -> None:
    at = _upload(make_app().run())  # the fake API answers PIKACHU: 62 % pikachu, 20 % ...
    at.switch_page(EXPLORE).run()
    _clean(at)
    star = _star(at)
    assert star is not None
    # independently: each species' median point on the map, averaged with the answer's weights
    record, _ = embedding_map(sprite_means())
    points = pd.DataFrame({k: record[k] for k in ("x", "y", "species")})
    centres = points.groupby("species")[["x", "y"]].median()
    weights = pd.Series(dict(PIKACHU))
    expected = (centres.loc[weights.index].mul(weights, axis=0)).sum() / weights.sum()
    assert star["x"].iloc[0] == pytest.approx(expected["x"])
    assert star["y"].iloc[0] == pytest.approx(expected["y"])
    lines = next(frame for layer, frame in _layers(at) if layer["mark"]["type"] == "rule")
    assert np.allclose(lines[["x2", "y2"]], centres.loc[weights.index])
    text = _captions(at)
    assert "**Your picture**, recognized as Pikachu (62%)" in text
    assert "not projected" in text
    assert "(Pikachu 62%, Charmander 20%, Jigglypuff 10%, Geodude 5%, Snorlax 3%)" in text


def test_before_any_picture_the_map_says_how_to_place_one(make_app: MakeApp) -> None:
    at = make_app().run().switch_page(EXPLORE).run()
    _clean(at)
    assert _star(at) is None
    assert "Recognize a picture first" in _captions(at)


def test_a_picture_of_no_known_species_has_no_place(make_app: MakeApp, fake_api: FakeApi) -> None:
    fake_api.set("POST", "/v1/predict", prediction(PIKACHU, known=False))
    at = _upload(make_app().run()).switch_page(EXPLORE).run()
    _clean(at)
    assert _star(at) is None
    assert "did not look like a Pokémon the model knows" in _captions(at)


def test_an_answer_of_another_model_is_not_placed(make_app: MakeApp, fake_api: FakeApi) -> None:
    older = prediction(PIKACHU)
    older.model = MODEL.model_copy(update={"version": "t0"})
    fake_api.set("POST", "/v1/predict", older)
    at = _upload(make_app().run()).switch_page(EXPLORE).run()
    _clean(at)
    assert _star(at) is None
    assert "answered by pokedex-colours t0" in _captions(at)


def _tooltip_fields(at: AppTest) -> list[list[str | None]]:
    return [[t.get("title") for t in layer["encoding"]["tooltip"]] for layer, _ in _layers(at)[:2]]


def test_hover_shows_the_species_picture_when_the_api_has_a_gallery(
    make_app: MakeApp, fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POKEDEX_API_PUBLIC_URL", "https://dex.example.org/")
    fake_api.set("GET", "/v1/species/bulbasaur/image", b"RIFF....WEBP")
    at = make_app().run().switch_page(EXPLORE).run()
    _clean(at)
    assert _tooltip_fields(at) == [["title", "types", "model says", "image"]] * 2
    _, front = _layers(at)[1]
    pikachu = front[front["species"] == "Pikachu"]
    assert set(pikachu["image"]) == {"https://dex.example.org/v1/species/pikachu/image"}
    assert "Hover for its species' picture" in _captions(at)


def test_without_a_gallery_the_tooltip_stays_text(make_app: MakeApp) -> None:
    at = make_app().run().switch_page(EXPLORE).run()  # the fake API has no species pictures
    _clean(at)
    assert _tooltip_fields(at) == [["title", "types", "model says"]] * 2
    assert "image" not in _layers(at)[1][1].columns
    assert "Hover for details" in _captions(at)
