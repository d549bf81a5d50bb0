"""Which logged predictions a drift check compares: a count or a time span (no heavy imports:
the serving settings validate their default window with it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from pokedex.errors import PokedexError

MAX_ROWS = 100_000  # the most recent rows a check reads, whatever the window
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_WINDOW = re.compile(r"(\d{1,9})([smhd]?)")
_MAX_SPAN = timedelta(days=366)


@dataclass(frozen=True)
class Window:
    """Which predictions a check compares: the last ``count``, or those of the last ``span``."""

    text: str
    count: int | None = None
    span: timedelta | None = None


def parse_window(text: str) -> Window:
    """``"500"`` (the last 500 predictions) or ``"30m"``, ``"6h"``, ``"7d"``; ValueError if not."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"window {text!r}: give a count of predictions (500) or a duration (30m, 6h, 7d)"
        )
    value, unit = int(match[1]), match[2]
    if value < 1:
        raise ValueError(f"window {text!r} is empty")
    if not unit:
        if value > MAX_ROWS:
            raise ValueError(f"window {text!r}: at most {MAX_ROWS:,} predictions")
        return Window(text=str(value), count=value)
    span = timedelta(**{_UNITS[unit]: value})
    if span > _MAX_SPAN:
        raise ValueError(f"window {text!r}: at most {_MAX_SPAN.days} days")
    return Window(text=f"{value}{unit}", span=span)


def choose_window(given: str | None, default: str) -> Window:
    """The window a check compares: ``given``, else ``default``; a malformed one is a usage
    error (exit code 2) that says what a window looks like."""
    try:
        return parse_window(given or default)
    except ValueError as exc:
        raise PokedexError(str(exc), exit_code=2) from exc
