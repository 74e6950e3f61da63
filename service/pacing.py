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
runs at ``share``, so a stream of reads never starves ingestion. A pause
ends once the reads it made way for are done and no other came within
``grace`` (a client's next request): a write beside occasional reads loses
little of its speed, and one beside a client reading back to back does not
cut in between its reads.

Writes also run on threads of their own at a lower CPU priority
(``WritePool``): when the machine's cores are all busy (a write's SQLite
commit, the event loop, the clients on the same host), the kernel runs the
event loop and its readers first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("idgraph.pacing")
P = ParamSpec("P")
T = TypeVar("T")


class ReadsFirst:
    def __init__(self, share: float, budget: float = 0.001, grace: float = 0.0005) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a writer's share is in (0, 1], not {share}")
        self._in_flight = 0  # requests being served; changed on the event loop only
        self._writes = 0  # of those, writes executing in a thread
        self.budget = budget
        self.pause = budget * (1 - share) / share
        self.grace = grace
        self.loop_thread: int | None = None  # never paused: it is what the pauses are for
        self.paused = 0.0  # seconds writes have spent stepping aside, in all
        self._turn = time.perf_counter()
        self._allowed = budget  # this turn's run; less after a pause the reads cut short
        self._reads_done = threading.Event()  # set while no read is in flight
        self._reads_done.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @in_flight.setter
    def in_flight(self, count: int) -> None:
        self._in_flight = count
        self._counted()

    @property
    def writes(self) -> int:
        return self._writes

    @writes.setter
    def writes(self, count: int) -> None:
        self._writes = count
        self._counted()

    @property
    def waiting(self) -> bool:
        return self._in_flight > self._writes

    def _counted(self) -> None:
        if self.waiting:
            self._reads_done.clear()
        else:
            self._reads_done.set()  # a paused write goes on at once

    def gate(self) -> None:
        """At a point of ``graph.pacing``: pause if reads wait and this write has had its turn.

        A pause ends when the reads are done, at the latest after ``pause``;
        the turn after a pause cut short is as much shorter, so that while
        reads keep coming a write still takes no more than its share.
        """
        if not self.pause or not self.waiting or threading.get_ident() == self.loop_thread:
            return
        now = time.perf_counter()
        if now - self._turn >= self._allowed:
            end = now + self.pause
            while (left := end - time.perf_counter()) > 0 and self._reads_done.wait(left):
                # Done; a client that sends its next read at once is not cut in on.
                time.sleep(min(self.grace, max(0.0, end - time.perf_counter())))
                if not self.waiting:
                    break
            self._turn = time.perf_counter()
            slept = self._turn - now
            self._allowed = self.budget * min(1.0, slept / self.pause)
            self.paused += slept

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a request's write: it is not a read the writer should wait for."""
        self.writes += 1
        try:
            yield
        finally:
            self.writes -= 1


def lower_priority(nice: int) -> None:
    """Give the calling thread ``nice`` more niceness (Linux schedules threads one by one).

    Elsewhere a priority is the whole process's, so nothing is changed.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:  # a container that forbids it: run at the usual priority
        log.warning("could not lower a writer thread's priority: %s", exc)


class WritePool:
    """The threads writes run on, ``nice`` steps below the event loop's CPU priority."""

    def __init__(self, nice: int, threads: int = 4) -> None:
        self._executor = ThreadPoolExecutor(
            threads, "idgraph-write", initializer=lower_priority, initargs=(nice,)
        )

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        context = contextvars.copy_context()
        call = functools.partial(context.run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Wait for the writes in progress; the store is closed after this."""
        self._executor.shutdown(wait=True)


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
