"""Explore: the model's embedding map, coloured by type, with hover details and a filter."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pokedex.dex.colours import TYPE_COLOURS, UNKNOWN_COLOUR
from pokedex.serving.schemas import EmbeddingMap
from pokedex.ui import session

UNKNOWN = "unknown"
_COLOURS = alt.Scale(
    domain=[*TYPE_COLOURS, UNKNOWN], range=[*TYPE_COLOURS.values(), UNKNOWN_COLOUR]
)
_TOOLTIP = [
    alt.Tooltip("species:N", title="species"),
    alt.Tooltip("types:N", title="types"),
    alt.Tooltip("predicted:N", title="model says"),
]


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
    frame = _frame(points, {s.name: s.display_name for s in session.species_index(client)})
    chosen = st.multiselect(
        "Highlight species",
        sorted(frame["species"].unique()),
        placeholder="All species",
        key="highlight",
    )
    picked = frame["species"].isin(chosen) if chosen else pd.Series(True, index=frame.index)
    st.altair_chart(_chart(frame, picked, bool(chosen)), width="stretch")
    shown = frame[picked]
    st.caption(
        f"{len(frame):,} {points.split} images of {frame['species'].nunique():,} species, "
        "placed by the model's penultimate features (UMAP) and coloured by primary type. "
        f"Hover for details, scroll to zoom. {shown['correct'].mean():.0%} of the "
        f"{len(shown):,} shown are predicted correctly."
    )


def _frame(points: EmbeddingMap, names: dict[str, str]) -> pd.DataFrame:
    """One row per image, species as display names where the catalog has them."""
    return pd.DataFrame(
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


def _chart(frame: pd.DataFrame, picked: pd.Series, filtered: bool) -> alt.LayerChart:
    """Picked points in type colours over the rest in grey; zoom and pan included."""
    # UMAP coordinates have no origin worth showing: fit the axes to the points
    axes = {
        "x": alt.X("x:Q", axis=None, scale=alt.Scale(zero=False)),
        "y": alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False)),
    }
    colour = alt.Color(
        "primary:N",
        scale=_COLOURS,
        legend=alt.Legend(title="primary type", orient="bottom", columns=6),
    )
    front = (
        alt.Chart(frame[picked])
        .mark_circle(size=70 if filtered else 22, opacity=0.85)
        .encode(**axes, color=colour, tooltip=_TOOLTIP)
    )
    back = (
        alt.Chart(frame[~picked])
        .mark_circle(size=14, opacity=0.25, color="#BBBBBB")
        .encode(**axes, tooltip=_TOOLTIP)
    )
    return alt.layer(back, front).properties(height=560).interactive()


render()
