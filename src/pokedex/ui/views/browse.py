"""Browse: any species' card with its picture and dex facts, and any type's matchups."""

from __future__ import annotations

from collections.abc import Collection

import streamlit as st

from pokedex.core.schemas import SpeciesSummary
from pokedex.dex.typechart import TYPES
from pokedex.ui import session
from pokedex.ui.cards import (
    dex_facts,
    dex_number,
    matchups,
    species_facts,
    species_heading,
    species_picture,
)


def render() -> None:
    """The page."""
    st.title("Browse", anchor=False)
    client = session.api()
    index = {s.name: s for s in session.species_index(client)}
    _seed_from_url("species", index)
    name = st.selectbox(
        f"Search the {len(index):,} species by name or number",
        list(index),
        index=None,
        format_func=lambda n: _label(index[n]),
        placeholder="Type a name or a number, e.g. Pikachu or 25",
        key="species",
        filter_mode="contains",  # kept in Pokédex order, so "6" lists #006 first
    )
    _keep_in_url("species", name)
    if name is not None:
        entry = session.species(client, name)
        with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
            species_picture(entry.name, entry.display_name)
            with st.container():
                species_heading(
                    entry.display_name, entry.national_number, entry.types, entry.generation
                )
        dex_facts(entry)
        species_facts(entry.stats, entry.multipliers or entry.weaknesses, entry.description)
    st.divider()
    st.subheader("Type matchups", anchor=False)
    _seed_from_url("type", TYPES)
    type_name = st.selectbox("Type", TYPES, format_func=str.title, key="type")
    _keep_in_url("type", type_name)
    matchups(session.type_matchups(client, type_name))


def _seed_from_url(key: str, options: Collection[str]) -> None:
    """On a fresh session, start a selectbox at the URL's choice (a shared link)."""
    wanted = st.query_params.get(key)
    if key not in st.session_state and wanted in options:
        st.session_state[key] = wanted


def _keep_in_url(key: str, value: str | None) -> None:
    """Mirror a choice into the URL, so the page can be shared or bookmarked."""
    if value is None:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value


def _label(species: SpeciesSummary) -> str:
    return f"{dex_number(species.national_number)} {species.display_name}"


render()
