"""Accuracy-by-feedback in the drift report: how often users' recent verdicts agree with the
model (the verdicts live in the prediction store, :mod:`pokedex.store.feedback`)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from pokedex.monitoring.window import Window
from pokedex.store.feedback import VERDICTS, Accuracy, read_accuracy


@dataclass(frozen=True)
class FeedbackCheck:
    """The verdicts of one window: None when the store has no feedback table yet."""

    window: str
    accuracy: Accuracy | None


def check_feedback(engine: Engine, window: Window, now: datetime | None = None) -> FeedbackCheck:
    """Accuracy-by-feedback over ``window`` (the last N verdicts, or those of a time span)."""
    since = (now or datetime.now(UTC)) - window.span if window.span is not None else None
    return FeedbackCheck(window.text, read_accuracy(engine, window.count, since))


def feedback_lines(check: FeedbackCheck) -> list[str]:
    """One line for a terminal."""
    result = check.accuracy
    if result is None or not result.verdicts:
        return [f"FEEDBACK: no verdicts in window {check.window}"]
    counts = ", ".join(f"{v} {result.by_verdict.get(v, 0)}" for v in VERDICTS)
    return [
        f"FEEDBACK: {result.accuracy:.1%} of {result.verdicts} verdicts agree with the model "
        f"(window {check.window}; {counts})"
    ]


def feedback_html(check: FeedbackCheck) -> str:
    """The report's section: agreement and the count of each kind of verdict."""
    result = check.accuracy
    if result is None or not result.verdicts:
        body = f"<p>No verdicts in window {html.escape(check.window)}.</p>"
    else:
        rows = "".join(
            f"<tr><td>{html.escape(v)}</td><td>{result.by_verdict.get(v, 0)}</td></tr>"
            for v in VERDICTS
        )
        body = (
            f"<p><b>{result.accuracy:.1%}</b> of the last {result.verdicts} verdicts (window "
            f"{html.escape(check.window)}) agree with the model: {result.agreeing} named its "
            "top-1 species, or said not a Pokémon where it said unknown.</p>"
            f"<table><tr><th>verdict</th><th>count</th></tr>{rows}</table>"
        )
    return f'<h2 id="feedback">Feedback</h2>\n{body}'
