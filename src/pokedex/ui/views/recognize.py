"""Recognize: a picture in, the species out (or "not a Pokémon I know")."""

from __future__ import annotations

import hashlib

import streamlit as st

from pokedex.serving.schemas import ModelInfo, PredictResponse
from pokedex.ui import session
from pokedex.ui.api import ApiError
from pokedex.ui.cards import species_facts, species_heading, top_species
from pokedex.ui.preview import enlarge, model_view, thumbnail

ACCEPTED = ["png", "jpg", "jpeg", "webp"]
SURE = 0.5  # below this calibrated top-1 probability the card says it is a guess
PICTURE_SIDE = 160


def render() -> None:
    """The page: the picture input on top, then the answer (first on a phone) and the pictures."""
    st.title("Recognize", anchor=False)
    upload = st.file_uploader(
        "Upload or drop a picture", type=ACCEPTED, help="PNG, JPEG or WebP, up to 10 MB"
    )
    photo = st.camera_input("Take a photo") if st.toggle("Use the camera") else None
    picked = photo or upload
    if picked is None:
        st.info("Drop a picture of a Pokémon, or take one, and the Pokédex will name it.")
        return
    data = picked.getvalue()
    answer, pictures = st.columns([3, 2], gap="large")
    with answer, st.spinner("Asking the Pokédex…"):
        try:
            result = _predict(data, picked.name)
        except ApiError as exc:
            st.error(str(exc), icon=":material/error:")
            result = None
    with pictures:
        _pictures(data, show_model_view=result is not None)
    if result is not None:
        with answer:
            _answer(result)


def _predict(data: bytes, filename: str) -> PredictResponse:
    """One API call per new picture: reruns of the page reuse the answer."""
    digest = hashlib.sha256(data).hexdigest()
    cached = st.session_state.get("prediction")
    if cached is not None and cached[0] == digest:
        return cached[1]
    st.session_state.pop("prediction", None)
    result = session.api().predict(data, filename)
    st.session_state["prediction"] = (digest, result)
    st.session_state["last_latency_ms"] = result.latency_ms
    return result


def _pictures(data: bytes, show_model_view: bool) -> None:
    """The upload and, beside it, the model's view of it; nothing for bytes that are no
    picture (the API's answer above says so)."""
    try:
        picture = thumbnail(data, 2 * PICTURE_SIDE)  # sharp on a 2x screen
    except ValueError:
        return
    mine, seen = st.columns(2)
    mine.image(picture, caption="Your picture", width=PICTURE_SIDE)
    if not show_model_view:
        return
    try:
        info: ModelInfo = session.model_info(session.api())
        pixels = model_view(data, info.input_size, info.background)
    except (ApiError, ValueError, OSError):
        return  # the API read it, Pillow here did not: the answer matters more than the preview
    size = info.input_size
    caption = f"As the model saw it: {size}×{size}, background flattened"
    seen.image(enlarge(pixels, PICTURE_SIDE), caption=caption)


def _answer(result: PredictResponse) -> None:
    if not result.known:
        st.warning(
            "**This does not look like a Pokémon I know.** The picture is too unlike every "
            "species the model learned; try a clearer, closer shot of one Pokémon.",
            icon=":material/help:",
        )
        with st.expander("What it looked most like (low confidence)"):
            top_species(result.species)
    else:
        _describe(result)
    model = result.model
    st.caption(
        f"{model.name} {model.version} ({model.variant}) answered in "
        f"{result.latency_ms:.0f} ms · request {result.request_id}"
    )


def _describe(result: PredictResponse) -> None:
    """The top species: its entry text needs a look-up, the rest came with the answer."""
    best = result.species[0]
    try:
        entry = session.species(session.api(), best.name)
    except ApiError:
        entry = None  # the answer alone still makes a card, without the entry text
    species_heading(
        best.display_name, best.national_number, result.types, entry.generation if entry else None
    )
    if best.probability < SURE:  # calibrated: about as often right as it says
        others = ", ".join(f"{s.display_name} ({s.probability:.0%})" for s in result.species[1:3])
        st.info(
            f"**Not sure.** {best.display_name} is the best guess at {best.probability:.0%}, "
            f"which means wrong about as often as right; also possible: {others}. "
            "Compare the pictures below.",
            icon=":material/help:",
        )
    top_species(result.species)
    st.divider()
    species_facts(result.stats, result.weaknesses, entry.description if entry else None)


render()
