"""Drift monitoring inside the API: checks on demand and on a timer, exported as gauges.

A check reads the served model's recent predictions back from the prediction log and compares
them with the reference profile in its bundle (:mod:`pokedex.monitoring`). Checks run one at a
time in a worker thread, and a result younger than ``drift_cache_s`` is reused, so probing the
route cannot pile up CPU work next to the model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from pokedex.errors import PokedexError
from pokedex.monitoring.check import check_drift, reference_of
from pokedex.monitoring.drift import DriftReport
from pokedex.monitoring.log import open_log
from pokedex.monitoring.profile import REFERENCE_FILE, Profile
from pokedex.monitoring.window import Window, parse_window
from pokedex.serving.model import ServedModel
from pokedex.serving.prometheus import Metrics

log = logging.getLogger(__name__)


class DriftMonitor:
    """Runs drift checks of the served model against its reference; publishes the gauges."""

    def __init__(self, url: str, metrics: Metrics, cache_s: float) -> None:
        self.url = url
        self.metrics = metrics
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._profile: tuple[tuple[Path, float], Profile] | None = None
        self._last: tuple[tuple[Path, str], float, DriftReport] | None = None

    def check(self, model: ServedModel, window: Window) -> DriftReport:
        """A drift report for ``window``; PokedexError when the bundle has no reference or the
        log cannot be read. Blocking: call it from a worker thread."""
        key = (model.bundle.path, window.text)
        with self._lock:
            if self._last is not None:
                last_key, at, report = self._last
                if last_key == key and time.monotonic() - at < self.cache_s:
                    return report
            profile = self._reference(model)
            if self._engine is None:
                # the log file may not exist before the first prediction: it is the same file
                self._engine = open_log(self.url, missing_ok=True)
            result = check_drift(model.bundle, profile, self._engine, window).report
            self.metrics.publish_drift(result, profile.confidence_mean)
            self._last = (key, time.monotonic(), result)
            return result

    def _reference(self, model: ServedModel) -> Profile:
        # re-read when the served bundle or its reference file changes (a rebuilt profile)
        path = model.bundle.path / REFERENCE_FILE
        key = (path, path.stat().st_mtime if path.is_file() else 0.0)
        if self._profile is None or self._profile[0] != key:
            self._profile = (key, reference_of(model.bundle))
        return self._profile[1]

    def close(self) -> None:
        """Release the database connections."""
        if self._engine is not None:
            self._engine.dispose()


async def watch(
    monitor: DriftMonitor,
    get_model: Callable[[], ServedModel | None],
    window_text: str,
    interval_s: float,
) -> None:
    """Check the served model every ``interval_s`` seconds, so the gauges stay current."""
    window = parse_window(window_text)
    warned: set[str] = set()
    while True:
        await asyncio.sleep(interval_s)
        model = get_model()
        if model is None:
            continue
        try:
            await asyncio.to_thread(monitor.check, model, window)
        except PokedexError as exc:
            if str(exc) not in warned:  # once per cause, not every interval
                warned.add(str(exc))
                log.warning("drift check skipped: %s", exc)
        except Exception:
            log.exception("drift check failed")  # the next interval tries again
