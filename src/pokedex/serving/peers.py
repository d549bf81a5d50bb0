"""The workers of one server, and whether they have all loaded their model."""

from __future__ import annotations

from typing import Any


class Peers:
    """How many of the server's workers have loaded their model (a counter they share).

    A worker listens once its own model is loaded, and the kernel hands each new connection
    to a worker that listens: keep-alive clients that connect while only one worker is up stay
    on it for good (measured: all 32 of the benchmark's clients on one of two workers, and the
    other idle). So a worker reports ready (``/readyz``) only once every worker has loaded.
    """

    def __init__(self, counter: Any, workers: int) -> None:
        self.counter = counter
        self.workers = workers

    def loaded(self) -> None:
        """This worker's model is loaded."""
        with self.counter.get_lock():
            self.counter.value += 1

    def all_ready(self) -> bool:
        """Every worker has loaded its model."""
        return bool(self.counter.value >= self.workers)
