"""The Streamlit side of the API: one shared client, cached reads, and the error boundary."""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from pokedex.core.schemas import (
    EmbeddingMap,
    ModelInfo,
    PredictResponse,
    SpeciesInfo,
    SpeciesSummary,
    TypeMatchups,
)
from pokedex.ui.api import ApiError, PokedexApi
from pokedex.ui.settings import UiSettings

log = logging.getLogger(__name__)
# cached reads are keyed by the API they came from, not by the client object (hash_funcs)
BY_URL = {PokedexApi: lambda api: api.base_url}


def settings() -> UiSettings:
    """The UI settings, read from the environment on every run (cheap)."""
    return UiSettings()


def api() -> PokedexApi:
    """The client for the configured API, shared by all sessions."""
    s = settings()
    return _client(s.api_url, s.api_timeout_s)


@st.cache_resource(show_spinner=False)
def _client(base_url: str, timeout_s: float) -> PokedexApi:
    return PokedexApi(base_url, timeout_s)


@st.cache_data(ttl=15, show_spinner=False, hash_funcs=BY_URL)
def model_info(client: PokedexApi) -> ModelInfo:
    """``GET /v1/model`` (a reload shows within 15 s)."""
    return client.model_info()


@st.cache_data(ttl=300, show_spinner=False, hash_funcs=BY_URL)
def species_index(client: PokedexApi) -> list[SpeciesSummary]:
    """Every species the served model knows, in Pokédex order."""
    return client.search("").items


@st.cache_data(ttl=300, show_spinner=False, hash_funcs=BY_URL)
def species(client: PokedexApi, name: str) -> SpeciesInfo:
    """One species' entry."""
    return client.species(name)


@st.cache_data(ttl=300, show_spinner=False, hash_funcs=BY_URL)
def type_matchups(client: PokedexApi, type_name: str) -> TypeMatchups:
    """One type's matchups."""
    return client.type_matchups(type_name)


@st.cache_data(ttl=300, show_spinner=False, hash_funcs=BY_URL)
def embeddings(client: PokedexApi) -> EmbeddingMap | None:
    """The served bundle's embedding map, None when it has none."""
    return client.embeddings()


@st.cache_data(ttl=300, show_spinner=False, hash_funcs=BY_URL)
def species_image(client: PokedexApi, name: str) -> bytes | None:
    """A species' picture (WebP bytes), or None, cached too, when the API has none for it."""
    return client.species_image(name)


def last_answer() -> PredictResponse | None:
    """The Recognize page's last answer in this browser session (it keeps ``(digest, answer)``
    under ``"prediction"``); None before any picture."""
    kept = st.session_state.get("prediction")
    return kept[1] if kept is not None else None


def guarded(page: Callable[[], None]) -> None:
    """Run a page; an API failure or a bug shows a readable message, never a traceback."""
    try:
        page()
    except ApiError as exc:
        st.error(str(exc), icon=":material/cloud_off:")
    except Exception:
        log.exception("the UI page failed")
        st.error(
            "Something went wrong while drawing this page. Reload to try again; the details "
            "are in the UI server's log.",
            icon=":material/error:",
        )
