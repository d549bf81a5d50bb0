"""Recognize: a picture in, the species out (or "not a Pokémon I know").

A picture comes in one of four ways (upload or drop, the camera, a paste, an example); the
latest one is the page's picture, kept in the session so that reruns reuse its answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from pokedex.core.schemas import ModelInfo, PredictResponse, SpeciesInfo
from pokedex.ui import session
from pokedex.ui.api import ApiError
from pokedex.ui.cards import SURE, species_facts, species_heading, top_species
from pokedex.ui.examples import Example, examples
from pokedex.ui.paste import paste_button, pasted_picture
from pokedex.ui.preview import enlarge, model_view, thumbnail
from pokedex.ui.verdict import KEEP_HOW, ask, kept_note, takes_verdicts

ACCEPTED = ["png", "jpg", "jpeg", "webp"]
PICTURE_SIDE = 150  # two side by side fit a phone's 390 px
EXAMPLE_SIDE = 80
# session keys
PICTURE, ROUND, INPUT_ERROR, PASTE = "picture", "input_round", "input_error", "paste"
KEEP, KEEP_ASKED = "keep_photo", "keep_asked"
WELCOME = (
    "**Show the Pokédex a Pokémon and it names it.** You get the species and its number, the "
    "five likeliest names with honest probabilities (a 70 % answer is right about 70 % of the "
    "time), its types, its base stats and the attack types that beat it.\n\n"
    "Drop a picture on the box below or browse for one, paste one you copied (Ctrl+V, ⌘V on a "
    "Mac, or **Paste a picture**), take one with the camera, or click an example."
)


@dataclass(frozen=True)
class Picture:
    """The page's picture: its bytes, a file name for the API, and which way it came in."""

    data: bytes
    filename: str
    source: str  # "upload", "camera", "paste" or "example"


def render() -> None:
    """The page: the ways in on top, then the picture with its answer beside it (above it on a
    phone) and more examples; before any picture, what the page does and the examples."""
    st.title("Recognize", anchor=False)
    picture: Picture | None = st.session_state.get(PICTURE)
    if picture is None:
        st.markdown(WELCOME)
    _inputs()
    if picture is None:
        _examples()
        return
    mine, answer = st.columns([2, 3], gap="medium")
    with answer, st.spinner("Asking the Pokédex…"):
        try:
            result = _predict(picture)
        except ApiError as exc:
            st.error(str(exc), icon=":material/error:")
            result = None
    with mine:
        _pictures(picture, show_model_view=result is not None)
    if result is not None:
        with answer:
            _answer(result, own=picture.source != "example")
    with st.expander("Try an example"):  # folded, after the answer: nothing between the two
        _examples()


def _inputs() -> None:
    """Upload or drop, paste, the camera (behind a switch), the choice to keep the photo when
    the API takes verdicts, and what went wrong with a paste."""
    turn = st.session_state.get(ROUND, 0)  # a new turn gives the upload and camera empty widgets
    upload = f"upload-{turn}"
    st.file_uploader(
        "Upload or drop a picture",
        type=ACCEPTED,
        help="PNG, JPEG or WebP, up to 10 MB",
        key=upload,
        on_change=_take,
        args=(upload, "upload"),
    )
    keeps = takes_verdicts()  # a kept photo is there for a verdict to teach the next model
    with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
        paste_button(PASTE, on_paste=_pasted)
        camera_on = st.toggle("Use the camera")
        if keeps:
            st.toggle("Keep my photo to improve the Pokédex", key=KEEP, persist_state="session")
    if keeps:
        st.caption(KEEP_HOW)
    if camera_on:
        camera = f"camera-{turn}"
        st.camera_input("Take a photo", key=camera, on_change=_take, args=(camera, "camera"))
    error = st.session_state.pop(INPUT_ERROR, None)
    if error:
        st.error(error, icon=":material/content_paste_off:")


def _examples() -> None:
    """A row of example pictures to click, or why there are none."""
    try:
        shown = examples(session.api())
    except ApiError as exc:
        st.caption(f"No examples to show: {exc}")
        return
    if not shown:
        st.caption(
            "No example pictures on this server: they come from the species gallery "
            "(`pokedex data gallery`, then restart `pokedex serve`)."
        )
        return
    st.markdown("**Or try one of these**")
    with st.container(horizontal=True, gap="small"):
        for example in shown:
            with st.container(width=EXAMPLE_SIDE + 40, horizontal_alignment="center", gap=None):
                st.image(example.data, width=EXAMPLE_SIDE)
                st.button(
                    example.display_name,
                    key=f"example-{example.name}",
                    on_click=_chose_example,
                    args=(example,),
                    width="stretch",
                )


def _take(key: str, source: str) -> None:
    """The upload or camera widget changed: its file is the picture, or, cleared, no longer."""
    file = st.session_state.get(key)
    current: Picture | None = st.session_state.get(PICTURE)
    if file is not None:
        st.session_state[PICTURE] = Picture(file.getvalue(), file.name, source)
    elif current is not None and current.source == source:
        del st.session_state[PICTURE]


def _pasted() -> None:
    try:
        data, filename = pasted_picture(st.session_state[PASTE].get("pasted"))
    except ValueError as exc:
        st.session_state[INPUT_ERROR] = str(exc)
        return
    _replace(Picture(data, filename, "paste"))


def _chose_example(example: Example) -> None:
    _replace(Picture(example.data, f"{example.name}.webp", "example"))


def _replace(picture: Picture) -> None:
    """A picture that did not come through the upload or camera widget: empty them, so that
    the page shows one picture at a time."""
    st.session_state[PICTURE] = picture
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def _predict(picture: Picture) -> PredictResponse:
    """One API call per new picture: reruns of the page reuse the answer. Your own pictures
    are kept when you chose so before sending them; the examples are the server's own."""
    digest = hashlib.sha256(picture.data).hexdigest()
    cached = st.session_state.get("prediction")
    if cached is not None and cached[0] == digest:
        return cached[1]
    st.session_state.pop("prediction", None)
    keep = bool(st.session_state.get(KEEP)) and picture.source != "example"
    result = session.api().predict(picture.data, picture.filename, keep_image=keep)
    st.session_state["prediction"] = (digest, result)
    st.session_state[KEEP_ASKED] = keep
    st.session_state["last_latency_ms"] = result.latency_ms
    return result


def _pictures(picture: Picture, show_model_view: bool) -> None:
    """The picture and, beside it, the model's view of it; nothing for bytes that are no
    picture (the API's answer says so)."""
    try:
        shown = thumbnail(picture.data, 2 * PICTURE_SIDE)  # sharp on a 2x screen
    except ValueError:
        return
    caption = "The example" if picture.source == "example" else "Your picture"
    # a horizontal container, not columns: columns stack on a phone, these two stay side by side
    with st.container(horizontal=True, gap="small"):
        st.image(shown, caption=caption, width=PICTURE_SIDE)
        if not show_model_view:
            return
        try:
            info: ModelInfo = session.model_info(session.api())
            pixels = model_view(picture.data, info.input_size, info.background)
        except (ApiError, ValueError, OSError):
            return  # the API read it, Pillow here did not: the answer matters more
        size = info.input_size
        caption = f"As the model saw it: {size}×{size}, background flattened"
        st.image(enlarge(pixels, PICTURE_SIDE), caption=caption, width=PICTURE_SIDE)


def _answer(result: PredictResponse, own: bool) -> None:
    """The card, "Is this right?" right under the guesses, then the facts and where the
    answer came from; ``own``: the user's picture, not an example."""
    if not result.known:
        st.warning(
            "**This does not look like a Pokémon I know.** The picture is too unlike every "
            "species the model learned; try a clearer, closer shot of one Pokémon.",
            icon=":material/help:",
        )
        with st.expander("What it looked most like (low confidence)"):
            top_species(result.species)
        ask(result)
    else:
        entry = _describe(result)
        ask(result)
        st.divider()
        species_facts(result.stats, result.weaknesses, entry.description if entry else None)
    model = result.model
    st.caption(
        f"{model.name} {model.version} ({model.variant}) answered in "
        f"{result.latency_ms:.0f} ms · request {result.request_id}"
    )
    wanted = own and bool(st.session_state.get(KEEP))
    note = kept_note(result, asked=bool(st.session_state.get(KEEP_ASKED)), wanted=wanted)
    if note:
        st.caption(note)


def _describe(result: PredictResponse) -> SpeciesInfo | None:
    """The top species and its guesses; its entry (for the facts below), when the API has
    it: the entry text needs a look-up, the rest came with the answer."""
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
    return entry


render()
