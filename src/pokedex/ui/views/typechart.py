"""Type chart: all 18×18 matchups at a glance, built from the API's type routes."""

from __future__ import annotations

import html

import streamlit as st

from pokedex.core.schemas import TypeMatchups
from pokedex.dex.colours import TYPE_COLOURS, UNKNOWN_COLOUR, text_colour
from pokedex.dex.typechart import TYPES
from pokedex.ui import session

# bucket of GET /v1/types/{type} -> the cell's text and colours (x1 cells stay blank)
_CELLS = {
    "x2": ("2", "#2E9E4F", "#FFFFFF"),
    "x0.5": ("½", "#F6C9C4", "#8A1C12"),
    "x0": ("0", "#2B2B2B", "#FFFFFF"),
}
_TABLE = "border-collapse:collapse;font-size:.8rem;text-align:center"
_CELL = "width:2.1rem;height:1.9rem;border:1px solid #E4E7EC;font-weight:700"


def render() -> None:
    """The page."""
    st.title("Type chart", anchor=False)
    st.caption(
        "Rows attack, columns defend: 2 is super effective, ½ not very effective, 0 no effect, "
        "blank ×1. A dual-typed defender multiplies its two columns."
    )
    client = session.api()
    tables = [session.type_matchups(client, name) for name in TYPES]
    st.markdown(chart_html(tables), unsafe_allow_html=True)


def chart_html(tables: list[TypeMatchups]) -> str:
    """The chart as an HTML table that scrolls sideways on a narrow screen."""
    factor = {t.type: {d: key for key, ds in t.attack.items() for d in ds} for t in tables}
    head = "".join(f"<th>{_badge(d, d[:3])}</th>" for d in TYPES)
    rows = []
    for attack in TYPES:
        cells = []
        for defend in TYPES:
            key = factor.get(attack, {}).get(defend)
            text, bg, fg = _CELLS.get(key or "", ("", "transparent", "inherit"))
            title = html.escape(f"{attack} → {defend}: ×{key[1:] if key else '1'}")
            style = f"{_CELL};background:{bg};color:{fg}"
            cells.append(f'<td class="pokedex-cell" title="{title}" style="{style}">{text}</td>')
        rows.append(f'<tr><th style="text-align:right">{_badge(attack)}</th>{"".join(cells)}</tr>')
    table = f'<table class="pokedex-typechart" style="{_TABLE}"><tr><th></th>{head}</tr>'
    return f'<div style="overflow-x:auto">{table}{"".join(rows)}</table></div>'


def _badge(name: str, text: str | None = None) -> str:
    """A small badge in the type's colour."""
    bg = TYPE_COLOURS.get(name, UNKNOWN_COLOUR)
    style = (
        f"display:inline-block;padding:.05rem .4rem;border-radius:.8rem;background:{bg};"
        f"color:{text_colour(bg)};font-size:.7rem;font-weight:700;text-transform:uppercase"
    )
    return f'<span title="{html.escape(name)}" style="{style}">{html.escape(text or name)}</span>'


render()
