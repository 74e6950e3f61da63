"""Reads first: a write in the serving process steps aside while requests wait.

Reads run on the event loop and a write (coercing a batch, resolution,
bookkeeping: pure Python) in a thread, and CPython gives the two turns of
equal length, so beside a stream of ingest batches reads got half the
interpreter at best; worse, every time a read gives the interpreter up for
a moment (a socket, a SQLite call) it waits for the writer's turn to end.
Installed at ``graph.pacing``'s points, the gate lets a write run for
``budget`` seconds at a time while any other request is in flight, then
sleeps, so that the write takes at most ``share`` of the time reads want.
A write with no read waiting runs at full speed; one that waited still
runs at ``share``, so a stream of reads never starves ingestion.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from starlette.types import ASGIApp, Receive, Scope, Send


class ReadsFirst:
    def __init__(self, share: float, budget: float = 0.001) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a writer's share is in (0, 1], not {share}")
        self.in_flight = 0  # requests being served; changed on the event loop only
        self.writes = 0  # of those, writes executing in a thread
        self.budget = budget
        self.pause = budget * (1 - share) / share
        self.loop_thread: int | None = None  # never paused: it is what the pauses are for
        self.paused = 0.0  # seconds writes have spent stepping aside, in all
        self._turn = time.perf_counter()

    @property
    def waiting(self) -> bool:
        return self.in_flight > self.writes

    def gate(self) -> None:
        """At a point of ``graph.pacing``: pause if reads wait and this write has had its turn."""
        if not self.pause or not self.waiting or threading.get_ident() == self.loop_thread:
            return
        now = time.perf_counter()
        if now - self._turn >= self.budget:
            time.sleep(self.pause)
            self._turn = time.perf_counter()
            self.paused += self._turn - now

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a request's write: it is not a read the writer should wait for."""
        self.writes += 1
        try:
            yield
        finally:
            self.writes -= 1


class CountRequests:
    """ASGI middleware that counts the HTTP requests in flight for ``ReadsFirst``."""

    def __init__(self, app: ASGIApp, reads_first: ReadsFirst) -> None:
        self.app = app
        self.reads_first = reads_first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counter = self.reads_first
        counter.loop_thread = threading.get_ident()
        counter.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            counter.in_flight -= 1
