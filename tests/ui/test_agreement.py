"""Accuracy-by-feedback by day, from nested windows of the API's counts."""

from __future__ import annotations

import pytest

from pokedex.core.schemas import FeedbackAccuracy
from pokedex.ui.agreement import Slot, daily, daily_series, window_words


def _window(days: int, verdicts: int, agreeing: int) -> FeedbackAccuracy:
    return FeedbackAccuracy(
        window=f"{days}d",
        verdicts=verdicts,
        agreeing=agreeing,
        accuracy=agreeing / verdicts if verdicts else None,
        by_verdict={},
    )


def test_neighbouring_windows_differ_by_one_days_verdicts() -> None:
    # 3 verdicts today (2 agree), none yesterday, 5 the day before (1 agrees)
    windows = [_window(1, 3, 2), _window(2, 3, 2), _window(3, 8, 3)]
    assert daily(windows) == [Slot(0, 3, 2), Slot(1, 0, 0), Slot(2, 5, 1)]
    assert [s.accuracy for s in daily(windows)] == [pytest.approx(2 / 3), None, 0.2]


def test_a_verdict_between_two_requests_never_makes_a_negative_day() -> None:
    # the 2d request came first and missed a verdict the 1d request then counted
    windows = [_window(1, 4, 4), _window(2, 3, 3), _window(3, 5, 4)]
    assert daily(windows) == [Slot(0, 4, 4), Slot(1, 0, 0), Slot(2, 1, 0)]


def test_the_series_asks_once_when_nothing_was_said() -> None:
    asked: list[str] = []

    def fetch(window: str) -> FeedbackAccuracy:
        asked.append(window)
        return _window(int(window[:-1]), 0, 0)

    assert daily_series(fetch, days=14) == []
    assert asked == ["14d"]


def test_the_series_asks_one_window_a_day() -> None:
    asked: list[str] = []

    def fetch(window: str) -> FeedbackAccuracy:
        asked.append(window)
        days = int(window[:-1])
        return _window(days, days, days - 1)  # one verdict a day, all but the newest agree

    slots = daily_series(fetch, days=4)
    assert asked == ["4d", "1d", "2d", "3d"]
    assert slots == [Slot(0, 1, 0), Slot(1, 1, 1), Slot(2, 1, 1), Slot(3, 1, 1)]


@pytest.mark.parametrize(
    ("window", "words"),
    [
        ("500", "the last 500 verdicts"),
        ("1", "the last verdict"),
        ("7d", "the last 7 days"),
        ("1h", "the last hour"),
        ("30m", "the last 30 minutes"),
        ("12000", "the last 12,000 verdicts"),
        ("soon", "the window soon"),
    ],
)
def test_window_words(window: str, words: str) -> None:
    assert window_words(window) == words
