"""The figure a reliability or fuzz test measured: printed, summed up, optionally saved.

``figure("T11", "...")`` prints the line, lists it under "reliability figures" at the end of
the run, and appends it as JSON to ``$POKEDEX_FIGURES`` when that is set (docs/reliability.md
is filled from such a run). Loaded by tests/conftest.py as a plugin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

_FIGURES: list[tuple[str, str]] = []

Figure = Callable[[str, str], None]


def record_figure(plan_id: str, text: str, test: str) -> None:
    """Report ``text`` as the figure of plan item ``plan_id``, measured by ``test``."""
    print(f"[{plan_id}] {text}")
    _FIGURES.append((plan_id, text))
    if path := os.environ.get("POKEDEX_FIGURES"):
        line = {"plan": plan_id, "test": test, "figure": text}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """``figure(plan_id, text)``: report the figure this test measured."""
    return lambda plan_id, text: record_figure(plan_id, text, request.node.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List every figure reported in this run."""
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for plan_id, text in _FIGURES:
            terminalreporter.line(f"{plan_id}: {text}")
