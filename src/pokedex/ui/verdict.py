"""Is this right? The verdict under an answer, and the confirmation that replaces it.

One verdict per answer. Once the API has recorded it, the buttons give way to a confirmation;
this browser session keeps the verdicts by prediction id, so a rerun or a return to the page
shows the confirmation again instead of the buttons.
"""

from __future__ import annotations

import streamlit as st

from pokedex.core.schemas import FeedbackResponse, PredictResponse, SpeciesSummary
from pokedex.ui import agreement, session
from pokedex.ui.api import ApiError
from pokedex.ui.cards import dex_number, species_picture

# session keys: prediction id -> the recorded verdict, or -> (why it was refused, final)
SENT, REFUSED = "verdicts", "verdicts_refused"
PICKED_SIDE = 56  # the chosen species' picture beside the picker
KEEP_HOW = (
    "Keeps a shrunk copy, without its metadata (place, camera, date), to teach the next model "
    "with your correction; to have it deleted, quote the reference shown under the answer."
)


def takes_verdicts() -> bool:
    """Whether the API records verdicts: not when its prediction log is off (or it predates
    them), which its accuracy-by-feedback route says with a 404. A store that is down for now
    still counts as taking them: the refusal will say so."""
    try:
        agreement.accuracy(session.api())
    except ApiError as exc:
        return exc.status != 404
    return True


def ask(result: PredictResponse) -> None:
    """The verdict buttons for ``result``, the confirmation once one is recorded, or nothing
    for an answer without an id or from an API that takes no verdicts."""
    if result.id is None or not takes_verdicts():
        return
    sent: FeedbackResponse | None = st.session_state.get(SENT, {}).get(result.id)
    refused: tuple[str, bool] | None = st.session_state.get(REFUSED, {}).get(result.id)
    with st.container(border=True, key="pokedex-verdict"):
        if sent is not None:
            _confirm(sent, result)
        elif refused is not None and refused[1]:
            st.warning(refused[0], icon=":material/block:")
        else:
            _buttons(result)
            if refused is not None:
                st.error(refused[0], icon=":material/error:")


def _buttons(result: PredictResponse) -> None:
    """Yes, not a Pokémon, or pick the species it shows (searchable, with its picture)."""
    best = result.species[0].display_name
    pid = result.id
    st.markdown("**Is this right?**")
    with st.container(horizontal=True, gap="small"):
        if result.known:
            st.button(
                f"Yes, it is {best}",
                key=f"verdict-correct-{pid}",
                icon=":material/check:",
                type="primary",
                on_click=_send,
                args=(pid, "correct"),
            )
            st.button(
                "No, it is not a Pokémon",
                key=f"verdict-none-{pid}",
                icon=":material/block:",
                on_click=_send,
                args=(pid, "not_pokemon"),
            )
        else:
            st.button(
                "Yes, it is not a Pokémon",
                key=f"verdict-none-{pid}",
                icon=":material/check:",
                type="primary",
                on_click=_send,
                args=(pid, "not_pokemon"),
            )
    _picker(result)


def _picker(result: PredictResponse) -> None:
    """A searchable list of every species, the chosen one's picture beside it, and Send."""
    try:
        index = session.species_index(session.api())
    except ApiError as exc:
        st.caption(f"The species list is unavailable, so none can be picked: {exc}")
        return
    by_name = {s.name: s for s in index}
    key = f"verdict-pick-{result.id}"
    label = "No, it is…" if result.known else "It is a Pokémon:"
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        chosen = st.selectbox(
            label,
            options=list(by_name),
            format_func=lambda name: _label(by_name[name]),
            index=None,
            placeholder="Type a name or number",
            key=key,
            width=260,
        )
        if chosen is not None:
            species_picture(chosen, by_name[chosen].display_name, px=PICKED_SIDE)
        st.button(
            "Send",
            key=f"verdict-send-{result.id}",
            icon=":material/send:",
            disabled=chosen is None,
            on_click=_send_picked,
            args=(result.id, key),
        )


def _label(entry: SpeciesSummary) -> str:
    return f"{entry.display_name} {dex_number(entry.national_number)}".strip()


def _send_picked(prediction_id: str, key: str) -> None:
    chosen = st.session_state.get(key)
    if chosen:
        _send(prediction_id, chosen)


def _send(prediction_id: str, verdict: str) -> None:
    """Record the verdict, or why the API refused it (final when the answer has one already)."""
    refused = st.session_state.setdefault(REFUSED, {})
    try:
        recorded = session.api().feedback(prediction_id, verdict)
    except ApiError as exc:
        final = exc.status == 409 and exc.retry_after_s is None
        refused[prediction_id] = (str(exc), final)
        return
    refused.pop(prediction_id, None)
    st.session_state.setdefault(SENT, {})[prediction_id] = recorded
    agreement.accuracy.clear()  # the Model page counts it at once, not 15 s later
    agreement.by_day.clear()


def _confirm(sent: FeedbackResponse, result: PredictResponse) -> None:
    """What was recorded, whether it agrees with the answer, and whether the photo was kept."""
    if sent.verdict == "not_pokemon":
        shows = "not a Pokémon"
    else:
        shows = _display_name(sent.species or result.species[0].name)
    if sent.agrees:
        agreement = f"It is {shows}, as the Pokédex said."
    elif result.known:
        agreement = f"It is {shows}; the Pokédex said {result.species[0].display_name}."
    else:
        agreement = f"It is {shows}; the Pokédex did not recognize it."
    kept = (
        "Your photo is kept with it, to teach the next model."
        if result.image_sha256
        else "The photo was not kept: your verdict counts towards how often the Pokédex is right."
    )
    st.success(
        f"**Thank you: recorded.** {agreement} {kept}",
        icon=":material/check_circle:",
    )


def _display_name(name: str) -> str:
    try:
        index = session.species_index(session.api())
    except ApiError:
        return name
    return next((s.display_name for s in index if s.name == name), name)


def kept_note(result: PredictResponse, asked: bool, wanted: bool) -> str | None:
    """Whether the picture behind ``result`` was kept, when there is something to say: kept
    (and the reference that has it deleted), kept on request but refused, or chosen too late.
    ``asked``: the request asked to keep it; ``wanted``: the choice is on now."""
    if result.image_sha256:
        return (
            "Your photo is kept with this answer, without its metadata; to have it deleted, "
            f"give whoever runs this Pokédex the reference {result.id}."
        )
    if asked:
        return "The Pokédex did not keep this photo: this server keeps none, or could not."
    if wanted:
        return "This photo was not kept: it was sent before you chose to keep it."
    return None
