"""The Pokédex web UI: `streamlit run` this file (``pokedex ui`` does) with the API running."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pokedex.ui.session import guarded

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="Pokédex", page_icon=":material/radio_button_checked:", layout="wide")
page = st.navigation(
    [
        st.Page(VIEWS / "recognize.py", title="Recognize", icon=":material/photo_camera:"),
        st.Page(VIEWS / "browse.py", title="Browse", icon=":material/menu_book:"),
        st.Page(VIEWS / "typechart.py", title="Type chart", icon=":material/grid_on:"),
        st.Page(VIEWS / "explore.py", title="Explore", icon=":material/scatter_plot:"),
        st.Page(VIEWS / "model.py", title="Model", icon=":material/monitoring:"),
    ],
    position="top",
)
# no empty band above the page title: Streamlit's default top padding leaves ~6 rem of nothing
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:4rem}</style>")
guarded(page.run)
st.caption(
    "Species facts from PokéAPI; pictures from the 1000 Pokémon dataset. Pokémon is a trademark "
    "of Nintendo, Creatures and Game Freak; this project is not affiliated with them."
)
