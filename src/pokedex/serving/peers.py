"""The workers of one server: whether they have all loaded their model, and how their
keep-alive connections are spread."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SHED_INTERVAL_S = 0.1


class Peers:
    """What one worker knows of the others, through counters they share.

    Readiness: a worker listens once its own model is loaded, and the kernel hands each new
    connection to a worker that listens, so keep-alive clients that connect while only one
    worker is up stay on it for good (measured: all 32 of the benchmark's clients on one of two
    workers, and the other idle). A worker therefore reports ready (``/readyz``) only once
    every worker has loaded.

    Balance: even then the kernel places each new connection by a hash of its addresses, so
    32 keep-alive clients split 13/19 or 12/20 and stay that way; the busier worker's answers
    wait longer. Each worker publishes how many connections it holds, and one holding more than
    its share closes a connection after its next answer (``Connection: close``): the client
    reconnects, and the kernel places the new connection afresh. At most one every
    ``SHED_INTERVAL_S``: a batch sends many answers before the first closed connection is
    counted, and closing on all of them threw clients back and forth (64 clients: 467-489 req/s
    and p99 354 ms, against 516-543 and 317 with no balancing at all).
    """

    def __init__(self, counter: Any, workers: int, connections: Any = None, index: int = 0) -> None:
        self.counter = counter
        self.workers = workers
        self.shared = connections  # one open-connection count per worker, or None
        self.index = index
        self.open_connections: Callable[[], int] = lambda: 0  # this worker's, set by the server
        self._last_shed = -math.inf

    def loaded(self) -> None:
        """This worker's model is loaded."""
        with self.counter.get_lock():
            self.counter.value += 1

    def all_ready(self) -> bool:
        """Every worker has loaded its model."""
        return bool(self.counter.value >= self.workers)

    def over_share(self) -> bool:
        """Publish this worker's connection count; True when it holds more than its share."""
        if self.shared is None:
            return False
        mine = self.open_connections()
        self.shared[self.index] = mine
        if mine <= math.ceil(sum(self.shared[:]) / self.workers):
            return False
        now = time.monotonic()
        if now - self._last_shed < SHED_INTERVAL_S:
            return False  # the last one closed may not be counted yet
        self._last_shed = now
        return True


class RebalanceMiddleware:
    """Answer with ``Connection: close`` while this worker holds more than its share."""

    def __init__(self, app: ASGIApp, peers: Peers) -> None:
        self.app = app
        self.peers = peers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; mark the answer when this worker should let go of one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and self.peers.over_share():
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_marked)
