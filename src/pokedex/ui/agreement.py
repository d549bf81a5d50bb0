"""Accuracy-by-feedback on the Model page: what users said of the answers, and by day.

``GET /v1/monitoring/feedback?window=Nd`` counts the verdicts of the last N days. Windows that
all end now nest (1d inside 2d inside 3d...), so two neighbours differ by exactly the verdicts
of one 24-hour slot: a daily series needs no route of its own, one request per day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from pokedex.core.schemas import FeedbackAccuracy
from pokedex.ui import session
from pokedex.ui.api import ApiError, PokedexApi
from pokedex.ui.launch import POKEDEX_RED

DAYS = 14
VERDICT_LABELS = {
    "correct": "“Yes, it is”",
    "species": "Named the species",
    "not_pokemon": "“Not a Pokémon”",
}
_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


@dataclass(frozen=True)
class Slot:
    """The verdicts of one 24-hour slot: ``days_ago`` 0 is the last 24 hours."""

    days_ago: int
    verdicts: int
    agreeing: int

    @property
    def accuracy(self) -> float | None:
        """The share of the slot's verdicts that agree with the model; None without any."""
        return self.agreeing / self.verdicts if self.verdicts else None


def daily(windows: Sequence[FeedbackAccuracy]) -> list[Slot]:
    """One slot per window, newest first, from windows of 1, 2, 3... days (``windows[i]`` spans
    ``i + 1`` days). A verdict that arrives between two requests could make a wider window count
    less than a narrower one: such a slot counts none rather than a negative number."""
    slots = []
    verdicts = agreeing = 0
    for days_ago, window in enumerate(windows):
        count = max(0, window.verdicts - verdicts)
        slots.append(Slot(days_ago, count, min(count, max(0, window.agreeing - agreeing))))
        verdicts, agreeing = max(verdicts, window.verdicts), max(agreeing, window.agreeing)
    return slots


def daily_series(fetch: Callable[[str], FeedbackAccuracy], days: int = DAYS) -> list[Slot]:
    """The last ``days`` slots, one ``fetch(window)`` per day; none at all when the widest
    window holds no verdict (one request, then)."""
    widest = fetch(f"{days}d")
    if widest.verdicts == 0:
        return []
    return daily([fetch(f"{n}d") for n in range(1, days)] + [widest])


def window_words(window: str) -> str:
    """``"500"`` → "the last 500 verdicts", ``"7d"`` → "the last 7 days", ``"1h"`` →
    "the last hour"; the text itself for a window of another form."""
    match = re.fullmatch(r"(\d+)([smhd]?)", window.strip())
    if match is None:
        return f"the window {window}"
    count, unit = int(match[1]), _UNITS.get(match[2], "verdict")
    if count == 1:
        return f"the last {unit}"
    return f"the last {count:,} {unit}s"


@st.cache_data(ttl=15, show_spinner=False, hash_funcs=session.BY_URL)
def accuracy(client: PokedexApi) -> FeedbackAccuracy:
    """Accuracy-by-feedback over the server's own window (a new verdict shows within 15 s)."""
    return client.feedback_accuracy()


@st.cache_data(ttl=60, show_spinner=False, hash_funcs=session.BY_URL)
def by_day(client: PokedexApi) -> list[Slot]:
    """The verdicts of each of the last 14 days (a request a day: cached for a minute)."""
    return daily_series(client.feedback_accuracy)


def section() -> FeedbackAccuracy | None:
    """What users said of its answers: how often they agree, each kind of verdict, and how
    that went day by day."""
    st.subheader("What users say", anchor=False)
    try:
        said = accuracy(session.api())
    except ApiError as exc:
        if exc.status == 404:
            st.caption("This Pokédex keeps no record of its answers, so it takes no verdicts.")
        else:
            st.caption(f"The users' verdicts are unavailable: {exc}")
        return None
    ask = "After each answer, the Recognize page asks **Is this right?**"
    if said.verdicts == 0 or said.accuracy is None:
        st.markdown(f"{ask} Nobody has answered yet.")
        return said
    few = said.window.isdigit() and said.verdicts < int(said.window)
    scope = "So far" if few else f"Over {window_words(said.window)}"
    st.markdown(
        f"{ask} {scope}, users agreed with it **{said.agreeing:,} times out of {said.verdicts:,}**."
    )
    figures = [("Right, say users", f"{said.accuracy:.0%}")]
    figures += [
        (label, f"{said.by_verdict.get(kind, 0):,}") for kind, label in VERDICT_LABELS.items()
    ]
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(label, value)
    st.caption(
        "A verdict agrees when it confirms the answer, names the species the Pokédex named, "
        "or calls a picture it turned away not a Pokémon. People tend to answer when "
        "something looks wrong, so this is a warning light, not a measurement."
    )
    try:
        days = by_day(session.api())
    except ApiError as exc:
        st.caption(f"The verdicts by day are unavailable: {exc}")
        return said
    if any(day.verdicts for day in days):
        _chart(days)
    return said


def _chart(days: list[Slot]) -> None:
    """Verdicts a day as bars, and the share that agree as a line, for the last 14 days."""
    now = datetime.now(UTC)
    frame = pd.DataFrame(
        {
            "day": [f"{now - timedelta(days=d.days_ago):%d %b}" for d in days],
            "verdicts": [d.verdicts for d in days],
            "agree": [d.accuracy for d in days],
        }
    )
    x = alt.X("day:N", sort=None, title=None, axis=alt.Axis(labelAngle=-45))
    oldest_first = frame.iloc[::-1]
    bars = (
        alt.Chart(oldest_first)
        .mark_bar(color="#D0D5DD", cornerRadiusEnd=3)
        .encode(
            x=x,
            y=alt.Y("verdicts:Q", title="verdicts", axis=alt.Axis(format="d", tickMinStep=1)),
            tooltip=["day", "verdicts"],
        )
    )
    line = (
        alt.Chart(oldest_first.dropna())
        .mark_line(color=POKEDEX_RED, point=alt.OverlayMarkDef(color=POKEDEX_RED))
        .encode(
            x=x,
            y=alt.Y(
                "agree:Q", title="agree", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            tooltip=["day", alt.Tooltip("agree:Q", format=".0%")],
        )
    )
    chart = alt.layer(bars, line).resolve_scale(y="independent").properties(height=200)
    st.altair_chart(chart, width="stretch")
    st.caption(
        f"The last {DAYS} days, each 24 hours ending at this hour: grey bars count the "
        "verdicts, the red line is the share that agree."
    )
