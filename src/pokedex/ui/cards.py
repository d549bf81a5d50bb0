"""The pieces every page shows: type badges, pictures, the species card, top-k bars, matchups."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from itertools import groupby
from urllib.parse import quote

import altair as alt
import pandas as pd
import streamlit as st

from pokedex.core.schemas import SpeciesInfo, SpeciesScore, TypeMatchups, Weakness
from pokedex.dex.catalog import STATS
from pokedex.dex.colours import TYPE_COLOURS, UNKNOWN_COLOUR, text_colour
from pokedex.dex.evolution import EvolutionStage
from pokedex.ui import session
from pokedex.ui.api import ApiError

STAT_LABELS = {
    "hp": "HP",
    "attack": "Attack",
    "defense": "Defense",
    "special-attack": "Sp. Atk",
    "special-defense": "Sp. Def",
    "speed": "Speed",
}
SURE = 0.5  # a calibrated top-1 probability from which an answer is no longer called a guess
STAT_MAX = 255  # the games' ceiling for a base stat: every chart shares this scale
_STAT_RAMP = ["#F34444", "#FF7F0F", "#FFDD57", "#A0E515", "#23CD5E"]  # weak (red) to strong
_ATTACK_WORDS = {"x2": "super effective on", "x0.5": "not very effective on", "x0": "no effect on"}
_DEFENSE_WORDS = {
    "x2": "super effective from",
    "x0.5": "not very effective from",
    "x0": "no effect from",
}
_BADGE = (
    "display:inline-block;margin:0 .3rem .3rem 0;padding:.1rem .65rem;border-radius:1rem;"
    "font-size:.85rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;"
    "background:{bg};color:{fg}"
)


_PICTURE = (
    "width:{px}px;height:{px}px;flex:none;border-radius:.6rem;background:#F2F4F7;"
    "object-fit:contain;display:flex;align-items:center;justify-content:center;"
    "color:#98A2B3;font-size:{font}px;font-weight:700"
)
_MULTIPLIER_LABELS = {4.0: "×4", 2.0: "×2", 0.5: "×½", 0.25: "×¼", 0.0: "×0"}


def dex_number(number: int | None) -> str:
    """``#025``, or an empty string when the catalog lacks the number."""
    return f"#{number:03d}" if number else ""


def badges_html(types: Sequence[str], kind: str) -> str:
    """Type badges in the usual type colours, as inline HTML.

    Each badge is a ``.pokedex-type`` span in a ``.pokedex-<kind>`` row, so a browser test can
    tell a species' own types from the types that counter it.
    """
    spans = []
    for name in types:
        bg = TYPE_COLOURS.get(name, UNKNOWN_COLOUR)
        style = _BADGE.format(bg=bg, fg=text_colour(bg))
        spans.append(f'<span class="pokedex-type" style="{style}">{html.escape(name)}</span>')
    row = f'class="pokedex-{html.escape(kind)}" style="display:flex;flex-wrap:wrap"'
    return f"<div {row}>{''.join(spans)}</div>"


def type_badges(types: Sequence[str], kind: str = "types") -> None:
    """Show a row of type badges; ``kind`` names the row (``types``, ``counters``...)."""
    st.markdown(badges_html(types, kind), unsafe_allow_html=True)


def picture_html(name: str, display_name: str, px: int) -> str:
    """The species' picture as an ``img.pokedex-picture``, or a labelled placeholder."""
    try:
        data = session.species_image(session.api(), name)
    except ApiError:
        data = None  # a picture is never worth an error on the card
    label = html.escape(display_name)
    style = _PICTURE.format(px=px, font=px // 2)
    if data is None:
        return (
            f'<div class="pokedex-picture pokedex-no-picture" role="img" style="{style}" '
            f'aria-label="No picture of {label}" title="No picture of {label} on this server">'
            "?</div>"
        )
    src = "data:image/webp;base64," + base64.b64encode(data).decode()
    return f'<img class="pokedex-picture" src="{src}" alt="{label}" style="{style}">'


def species_picture(name: str, display_name: str, px: int = 120) -> None:
    """Show the species' picture, or the placeholder when the API has none."""
    st.markdown(picture_html(name, display_name, px), unsafe_allow_html=True, width="content")


def browse_link(name: str) -> str:
    """The relative URL of the species' page in Browse (a shareable deep link)."""
    return f"browse?species={quote(name, safe='')}"


def top_species(scores: Sequence[SpeciesScore]) -> None:
    """One picture and probability bar per candidate species, best first; a name opens its
    page in Browse."""
    for score in scores:
        number = dex_number(score.national_number)
        name = f"[**{score.display_name}**]({browse_link(score.name)})"
        with st.container(horizontal=True, vertical_alignment="center"):
            species_picture(score.name, score.display_name, px=44)
            st.progress(
                min(1.0, max(0.0, score.probability)),
                text=f"{name} {number} · {confidence(score.probability)}",
            )


def confidence(probability: float) -> str:
    """The probability as markdown, coloured by how much it can be trusted (calibrated:
    a 0.6 is right about 60 % of the time): green from 50 %, orange from 20 %, grey below."""
    colour = "green" if probability >= SURE else "orange" if probability >= 0.2 else "gray"
    return f":{colour}[{probability:.1%}]"


def stats_chart(stats: dict[str, int]) -> None:
    """Base stats as horizontal bars on the games' 0-255 scale, with the total."""
    order = [s for s in STATS if s in stats]
    frame = pd.DataFrame(
        {"stat": [STAT_LABELS[s] for s in order], "value": [stats[s] for s in order]}
    )
    y = alt.Y("stat:N", sort=None, title=None)
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("value:Q", scale=alt.Scale(domain=[0, STAT_MAX]), title=None),
            y=y,
            color=alt.Color(
                "value:Q",
                scale=alt.Scale(domain=[0, 60, 90, 120, 150], range=_STAT_RAMP),
                legend=None,
            ),
            tooltip=["stat", "value"],
        )
    )
    labels = bars.mark_text(align="left", dx=4).encode(text="value:Q", color=alt.value("#444"))
    st.altair_chart((bars + labels).properties(height=190), width="stretch")
    st.caption(f"Base stat total: {sum(stats.values())}")


def weakness_groups(weaknesses: Sequence[Weakness]) -> None:
    """The attack types that hit hardest, grouped by multiplier (×4 first, then ×2)."""
    strong = [w for w in weaknesses if w.multiplier > 1]
    if not strong:
        st.caption("No attack type hits it for more than ×1.")
    _multiplier_rows(strong, kind="counters")


def _multiplier_rows(multipliers: Sequence[Weakness], kind: str) -> None:
    """One row of type badges per multiplier, the largest first."""
    ordered = sorted(multipliers, key=lambda w: -w.multiplier)
    for multiplier, group in groupby(ordered, key=lambda w: w.multiplier):
        col_label, col_badges = st.columns([1, 5], vertical_alignment="center")
        col_label.markdown(f"**{_MULTIPLIER_LABELS.get(multiplier, f'×{multiplier:g}')}**")
        with col_badges:
            type_badges([w.type for w in group], kind=kind)


def species_heading(
    display_name: str, number: int | None, types: Sequence[str], generation: int | None = None
) -> None:
    """Name and number, type badges, and the generation when known."""
    st.subheader(f"{display_name} {dex_number(number)}".strip(), anchor=False)
    type_badges(types)
    if generation:
        st.caption(f"Generation {generation}")


def species_facts(
    stats: dict[str, int] | None, weaknesses: Sequence[Weakness], description: str | None
) -> None:
    """The Pokédex entry (when the data has one), base stats and the types that counter it."""
    if description:
        st.markdown(f"> {description}")
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Base stats**")
        if stats:
            stats_chart(stats)
        else:
            st.caption("The model bundle has no stats for this species.")
    with right:
        st.markdown("**Hit it with**")
        weakness_groups(weaknesses)
        weak = [w for w in weaknesses if w.multiplier < 1]
        if weak:
            st.markdown("**It resists**")
            _multiplier_rows(weak, kind="resisted")


def dex_facts(entry: SpeciesInfo) -> None:
    """Size, abilities and the evolution line, each only when the bundle's catalog has it."""
    left, right = st.columns(2, gap="medium")
    with left:
        if entry.height_m is not None and entry.weight_kg is not None:
            st.markdown(f"**Size** · {entry.height_m:g} m · {entry.weight_kg:g} kg")
        if entry.abilities:
            names = [f"{a.name} (hidden)" if a.hidden else a.name for a in entry.abilities]
            st.markdown(f"**Abilities** · {' · '.join(names)}")
    with right:
        if len(entry.evolution) == 1:
            st.markdown("**Evolution** · it does not evolve")
        elif entry.evolution:
            st.markdown("**Evolution**")
            by_name = {stage.name: stage for stage in entry.evolution}
            steps = []
            for stage in entry.evolution[1:]:
                before = _stage(by_name.get(stage.evolves_from or ""), entry.national_number)
                how = f" · {html.escape(stage.how)}" if stage.how else ""
                steps.append(f"<li>{before} → {_stage(stage, entry.national_number)}{how}</li>")
            st.markdown(
                f'<ul class="pokedex-evolution">{"".join(steps)}</ul>', unsafe_allow_html=True
            )


def _stage(stage: EvolutionStage | None, current: int) -> str:
    """A stage's name as HTML, in bold when it is the species on the card."""
    if stage is None:
        return "?"
    text = html.escape(stage.display_name)
    return f"<b>{text}</b>" if stage.national_number == current else text


def matchups(table: TypeMatchups) -> None:
    """A type's attack and defense buckets as badge rows."""
    left, right = st.columns(2, gap="medium")
    _buckets(left, f"{table.type.title()} attacks are…", table.attack, _ATTACK_WORDS)
    _buckets(right, f"Attacks on {table.type.title()} are…", table.defense, _DEFENSE_WORDS)


def _buckets(
    column: st.delta_generator.DeltaGenerator,
    title: str,
    buckets: dict[str, list[str]],
    words: dict[str, str],
) -> None:
    with column:
        st.markdown(f"**{title}**")
        for key, phrase in words.items():
            types = buckets.get(key, [])
            st.markdown(f"{key.replace('x', '×')} · {phrase}")
            if types:
                type_badges(types, kind="matchups")
            else:
                st.caption("none")
