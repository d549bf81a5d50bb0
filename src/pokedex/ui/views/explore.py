"""Explore: the model's embedding map, coloured by type, with hover pictures, a filter, and the
user's last recognised picture placed among the test images."""

from __future__ import annotations

from urllib.parse import quote

import altair as alt
import pandas as pd
import streamlit as st

from pokedex.core.schemas import EmbeddingMap, PredictResponse
from pokedex.dex.colours import TYPE_COLOURS, UNKNOWN_COLOUR
from pokedex.ui import session
from pokedex.ui.api import ApiError, PokedexApi
from pokedex.ui.placement import Placement, place

UNKNOWN = "unknown"
YOURS = "Your picture"
_COLOURS = alt.Scale(
    domain=[*TYPE_COLOURS, UNKNOWN], range=[*TYPE_COLOURS.values(), UNKNOWN_COLOUR]
)
# vega-tooltip shows a "title" key as the heading and an "image" key as a picture
_TOOLTIP = [
    alt.Tooltip("species:N", title="title"),
    alt.Tooltip("types:N", title="types"),
    alt.Tooltip("predicted:N", title="model says"),
]
_PICTURE = alt.Tooltip("image:N", title="image")
_STAR = (
    "M0,-1L0.2245,-0.309L0.9511,-0.309L0.3633,0.118L0.5878,0.809L0,0.382L-0.5878,0.809"
    "L-0.3633,0.118L-0.9511,-0.309L-0.2245,-0.309Z"
)
_INK = "#1A1A1A"


def render() -> None:
    """The page."""
    st.title("Explore", anchor=False)
    client = session.api()
    points = session.embeddings(client)
    if points is None:
        st.info(
            "The served model bundle has no embedding map yet. Add one with "
            "`pokedex evaluate --model <bundle> --embeddings`, then reload the model.",
            icon=":material/scatter_plot:",
        )
        return
    names = {s.name: s.display_name for s in session.species_index(client)}
    pictures = _has_pictures(client, points.species[0]) if points.species else False
    frame = _frame(points, names, session.settings().public_url if pictures else None)
    chosen = st.multiselect(
        "Highlight species",
        sorted(frame["species"].unique()),
        placeholder="All species",
        key="highlight",
    )
    picked = frame["species"].isin(chosen) if chosen else pd.Series(True, index=frame.index)
    answer = session.last_answer()
    placed, note = _placement(client, points, answer)
    layers = _points(frame, picked, bool(chosen), pictures)
    if placed is not None:
        layers += _upload(placed, names)
    st.altair_chart(alt.layer(*layers).properties(height=560).interactive(), width="stretch")
    if answer is not None and placed is not None:
        st.caption(_placement_caption(answer, placed, names))
    elif note:
        st.caption(note)
    shown = frame[picked]
    hover = "its species' picture and details" if pictures else "details"
    st.caption(
        f"{len(frame):,} {points.split} images of {frame['species'].nunique():,} species, "
        "placed by the model's penultimate features (UMAP) and coloured by primary type. "
        f"Hover for {hover}, scroll to zoom. {shown['correct'].mean():.0%} of the "
        f"{len(shown):,} shown are predicted correctly."
    )


@st.cache_data(ttl=300, show_spinner=False, hash_funcs={PokedexApi: lambda api: api.base_url})
def _gallery_answers(client: PokedexApi, name: str) -> bool:
    return client.species_image(name) is not None


def _has_pictures(client: PokedexApi, name: str) -> bool:
    """Whether the API serves species pictures (asked for one species of the map; a failing
    API means text tooltips, never a broken page)."""
    try:
        return _gallery_answers(client, name)
    except ApiError:
        return False


def _frame(points: EmbeddingMap, names: dict[str, str], api_url: str | None) -> pd.DataFrame:
    """One row per image, species as display names where the catalog has them, and the
    species' picture URL when the API has pictures."""
    frame = pd.DataFrame(
        {
            "x": points.x,
            "y": points.y,
            "species": [names.get(s, s) for s in points.species],
            "predicted": [names.get(s, s) for s in points.predicted],
            "primary": [t[0] if t else UNKNOWN for t in points.types],
            "types": ["/".join(t) or UNKNOWN for t in points.types],
            "correct": [a == b for a, b in zip(points.species, points.predicted, strict=True)],
        }
    )
    if api_url is not None:
        frame["image"] = [f"{api_url}/v1/species/{quote(s, safe='')}/image" for s in points.species]
    return frame


def _placement(
    client: PokedexApi, points: EmbeddingMap, answer: PredictResponse | None
) -> tuple[Placement | None, str | None]:
    """Where the last recognised picture goes, or why it has no place (None: no picture)."""
    if answer is None:
        return None, "Recognize a picture first, and this map shows where it lands."
    info = session.model_info(client)
    if (answer.model.name, answer.model.version) != (info.name, info.version):
        return None, (
            f"Your last picture was answered by {answer.model.name} {answer.model.version}, "
            f"not by the model of this map ({info.name} {info.version}): recognize it again "
            "to place it."
        )
    if not answer.known:
        return None, (
            "Your last picture did not look like a Pokémon the model knows, so it has no "
            "place among the species on this map."
        )
    placed = place(points, answer.species)
    if placed is None:
        return None, "None of your last picture's top species has images on this map."
    return placed, None


def _placement_caption(answer: PredictResponse, placed: Placement, names: dict[str, str]) -> str:
    best = answer.species[0]
    return (
        f"★ **{YOURS}**, recognized as {best.display_name} ({_percent(best.probability)}). "
        "It is placed from the model's answer, not projected: the map's UMAP projection is "
        "fitted once on the test images and not kept with the model, so the star sits at the "
        "centre of its top species' images, weighted by their probabilities "
        f"({_weights(placed, names)}), with a line to each."
    )


def _weights(placed: Placement, names: dict[str, str]) -> str:
    """``Pikachu 73%, Charmander 26%, ...``: the species that placed the picture."""
    return ", ".join(
        f"{names.get(p.species, p.species)} {_percent(p.probability)}" for p in placed.pulls
    )


def _percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.005 else "<1%"


def _points(
    frame: pd.DataFrame, picked: pd.Series, filtered: bool, pictures: bool
) -> list[alt.Chart]:
    """Picked points in type colours over the rest in grey."""
    tooltip = [*_TOOLTIP, _PICTURE] if pictures else _TOOLTIP
    colour = alt.Color(
        "primary:N",
        scale=_COLOURS,
        legend=alt.Legend(title="primary type", orient="bottom", columns=6),
    )
    front = (
        alt.Chart(frame[picked])
        .mark_circle(size=70 if filtered else 22, opacity=0.85)
        .encode(**_axes(), color=colour, tooltip=tooltip)
    )
    back = (
        alt.Chart(frame[~picked])
        .mark_circle(size=14, opacity=0.25, color="#BBBBBB")
        .encode(**_axes(), tooltip=tooltip)
    )
    return [back, front]


def _axes() -> dict[str, alt.X | alt.Y]:
    # UMAP coordinates have no origin worth showing: fit the axes to the points
    return {
        "x": alt.X("x:Q", axis=None, scale=alt.Scale(zero=False)),
        "y": alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False)),
    }


def _upload(placed: Placement, names: dict[str, str]) -> list[alt.Chart]:
    """A line from the picture to each species centre that placed it (the stronger the pull,
    the darker), the star, and its label."""
    pulls = pd.DataFrame(
        {
            "x": placed.x,
            "y": placed.y,
            "x2": [p.x for p in placed.pulls],
            "y2": [p.y for p in placed.pulls],
            "pull": [p.probability for p in placed.pulls],
        }
    )
    lines = (
        alt.Chart(pulls)
        .mark_rule(color=_INK, strokeDash=[4, 3])
        .encode(
            **_axes(),
            x2="x2:Q",
            y2="y2:Q",
            opacity=alt.Opacity(
                "pull:Q", scale=alt.Scale(domain=[0, 1], range=[0.2, 1]), legend=None
            ),
        )
    )
    star = pd.DataFrame(
        {
            "x": [placed.x],
            "y": [placed.y],
            "title": [YOURS],
            "placed from": [_weights(placed, names)],
        }
    )
    mark = (
        alt.Chart(star)
        .mark_point(
            shape=_STAR,
            size=420,
            filled=True,
            color="#DC0A2D",
            stroke="white",
            strokeWidth=1.5,
            opacity=1,
        )
        .encode(
            **_axes(),
            description=alt.value(YOURS),
            tooltip=[alt.Tooltip("title:N"), alt.Tooltip("placed from:N")],
        )
    )
    label = (
        alt.Chart(star)
        .mark_text(align="left", dx=14, fontWeight="bold", color=_INK)
        .encode(**_axes(), text="title:N")
    )
    return [lines, mark, label]


render()
