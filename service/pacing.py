"""Reads first: a write in the serving process makes way while requests wait.

Reads run on the event loop. While reads are about (one in flight, or one
answered within ``QUIET``), a write on the embedded store runs there too,
in a greenlet of its own (``LoopWriter``): at each of ``graph.pacing``'s
points, once it has run for a turn (a quarter of a millisecond), it gives
the loop back, which takes in what arrived and serves it; the write goes on
when the reads in flight are done. What waits without the interpreter (a
SQLite statement, a commit's fsync, folding arrays) it hands to a thread of
its own meanwhile. A read and a write thus never hold the interpreter at the
same time: a thread that writes beside the loop (as before) took turns with
it, and every time a read gave the interpreter up for a moment (a socket, a
SQLite call) it waited for the writer's turn to end. A write that starts
with no read about runs on a thread at full speed.

While reads keep coming, ``ReadsFirst`` keeps the writer to ``share`` of
the time: a pause ends once the reads it made way for are done and no other
came within ``grace`` (a client's next request), and at the latest after
``pause``, after which the write runs for as much longer. A write with no
read waiting runs at full speed, and a stream of reads never starves it.

A store whose writes wait on the network (Neo4j) writes on threads of their
own (``WritePool``) at a lower CPU priority, paced by the same rules at the
same points; so does the tag jobs' thread.
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
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import greenlet
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
        self._changed: asyncio.Future[None] | None = None  # what a loop write's pause awaits
        self.reads_done_at = float("-inf")  # when a request other than a write last ended

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
        elif not self._reads_done.is_set():
            self._reads_done.set()  # a paused write goes on at once
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)  # a paused loop write looks again

    async def counts_change(self, timeout: float) -> bool:
        """Whether the requests in flight change within ``timeout`` (counted on this loop)."""
        self._changed = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait([self._changed], timeout=max(0.0, timeout))
        return bool(done)

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

    async def run_coroutine(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``make()`` run to its end in a thread, on an event loop of that thread's own."""
        return await self.run(lambda: asyncio.run(make()))

    async def close(self) -> None:
        """Wait for the writes in progress; the store is closed after this."""
        self._executor.shutdown(wait=True)


# Set in a request's ASGI scope by the handler of a write: its end is no read's end.
WRITE_SCOPE_KEY = "idgraph.write"

# What a write's greenlet hands the loop: its turn is over, a call to run while the
# loop serves reads, or a future its coroutine awaits.
_TURN_OVER = "turn over"
_WAIT = "wait"
_AWAIT = "await"

# The greenlet of each write in progress, and its writer: what a point reached in it is.
_WRITERS: dict[greenlet.greenlet, LoopWriter] = {}

# How long a write runs between two looks at what arrived: a read that arrives
# meanwhile waits for the rest of the turn, and for the piece of work the write
# is in, to its next point. Beside an ingest stream, turns of half a millisecond
# (in an earlier form of these pauses) gave a lone profile reader p99 4.7-5.1 ms
# against 3.9-4.2 (three alternating rounds), the stream 650-700 events/s
# against 550-600.
TURN = 0.00025
# While no read comes, a write looks less and less often, down to once a
# millisecond; a read that comes then waits for the rest of that turn.
LONGEST_TURN = 0.001
# While reads are about, a turn keeps the write to ``share`` of the time: it is
# as long as the loop had since the last one, times share / (1 - share), up to
# this. A read may wait this long behind the write, where many clients' reads
# (rounds of the loop of 10 ms and more) wait longer for one another. Beside ten
# profile readers (alternating rounds), a cap of 5 ms took the stream from 300
# events/s to 433-500 against 1 ms, the readers' p99 beside it 23.5 ms against
# 24.2; one reader's p99 beside it 6.0 ms against 5.4.
LONGEST_SHARE_TURN = 0.005
# A write's statements run in place once no read has come for this long: a read
# that comes then waits for one statement (a millisecond or two) and for the rest
# of the turn, and the next statements go off the loop again.
QUIET = 0.05


class LoopWriter:
    """Runs writes one at a time on the event loop's own thread, each in a greenlet.

    The write gives the loop back at ``graph.pacing``'s points once its turn
    is over, and lets it serve reads while a call it handed over
    (``graph.pacing.blocking``) runs on a thread of its own. A request that
    is cancelled (its client went away) leaves its write to finish: a write
    is never left half done in a suspended greenlet.
    """

    def __init__(
        self,
        reads_first: ReadsFirst,
        nice: int = 0,
        turn: float = TURN,
        longest_turn: float = LONGEST_TURN,
        longest_share_turn: float = LONGEST_SHARE_TURN,
    ) -> None:
        self.reads_first = reads_first
        self.turn = turn
        self.longest_turn = max(turn, longest_turn)
        self.longest_share_turn = max(turn, longest_share_turn)
        # While reads keep coming the write makes way this long between turns, so
        # that it takes ``share`` of the time as a write on a thread does.
        self.pause = reads_first.pause * turn / reads_first.budget
        self._allowed = turn
        self._started = 0.0  # when the write running now last got the loop
        self._one: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._waits = ThreadPoolExecutor(
            1, "idgraph-write-waits", initializer=lower_priority, initargs=(nice,)
        )
        self._thread = ThreadPoolExecutor(
            1, "idgraph-write", initializer=lower_priority, initargs=(nice,)
        )

    async def run(self, work: Callable[[], T]) -> T:
        return await self._shielded(self._write(work))

    async def run_coroutine(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``make()`` run to its end as a write: what it awaits, the loop awaits for it.

        With no read about (none in flight, none ended within ``QUIET``) the
        write runs on a thread instead, on an event loop of its own, at full
        speed: on the loop its looks and hand-offs cost a write with no reader
        about a tenth of its speed. A read that comes meanwhile takes turns
        with it on the interpreter, as before writes ran on the loop.
        """
        if self._quiet():
            return await self._shielded(self._on_thread(lambda: asyncio.run(make())))
        return await self.run(lambda: _drive(make()))

    async def _shielded(self, write: Coroutine[Any, Any, T]) -> T:
        """``write`` as a task its request's cancellation leaves running; ``close`` waits for it."""
        task = asyncio.ensure_future(write)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    def _quiet(self) -> bool:
        first = self.reads_first
        return not first.waiting and time.perf_counter() - first.reads_done_at >= QUIET

    async def _on_thread(self, work: Callable[[], T]) -> T:
        async with self._one_at_a_time():
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, functools.partial(context.run, work))

    async def close(self) -> None:
        """Wait for the writes in progress; the store is closed after this."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._waits.shutdown(wait=True)
        self._thread.shutdown(wait=True)

    def point(self) -> None:
        if time.perf_counter() - self._started >= self._allowed:
            greenlet.getcurrent().parent.switch((_TURN_OVER, None))

    def blocking(self, call: Callable[..., T], *args: Any) -> T:
        result: T = greenlet.getcurrent().parent.switch((_WAIT, functools.partial(call, *args)))
        return result

    def statement(self, call: Callable[..., T], *args: Any) -> T:
        """Off the loop while reads are about; in place once none came for ``QUIET``."""
        first = self.reads_first
        if first.waiting or time.perf_counter() - first.reads_done_at < QUIET:
            return self.blocking(call, *args)
        return call(*args)

    def _one_at_a_time(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._one is None or self._one[0] is not loop:  # a new loop: a test's new client
            self._one = (loop, asyncio.Lock())
        return self._one[1]

    async def _write(self, work: Callable[[], T]) -> T:
        """``work()`` in a greenlet of its own, once the write before it has ended.

        The task is shielded from its request; if the loop itself cancels it
        (shutting down), the write still runs to its end first, and the
        cancellation is raised after.
        """
        async with self._one_at_a_time():
            writer = greenlet.greenlet(work)
            writer.gr_context = contextvars.copy_context()
            _WRITERS[writer] = self
            try:
                done, cancelled = await self._serve(writer)
            finally:
                del _WRITERS[writer]
        if cancelled is not None:
            raise cancelled
        result: T = done
        return result

    async def _serve(self, writer: greenlet.greenlet) -> tuple[Any, asyncio.CancelledError | None]:
        """Resume ``writer`` until it ends, doing for it what it hands the loop."""
        cancelled: asyncio.CancelledError | None = None
        self._allowed = self.turn
        resume: Callable[[], Any] = writer.switch
        while True:
            self._started = time.perf_counter()
            message = resume()
            if writer.dead:
                return message, cancelled
            resume = writer.switch
            kind, payload = message
            if kind == _TURN_OVER:
                try:
                    await self._make_way()
                except asyncio.CancelledError as exc:
                    cancelled = exc
                continue
            if kind == _WAIT:
                awaited = asyncio.get_running_loop().run_in_executor(self._waits, payload)
            elif payload is None:  # a bare yield: the coroutine lets the loop run once
                awaited = asyncio.ensure_future(asyncio.sleep(0))
            else:
                payload._asyncio_future_blocking = False
                awaited = payload
            while not awaited.done():
                try:
                    await asyncio.wait([awaited])
                except asyncio.CancelledError as exc:
                    cancelled = exc
            if kind == _WAIT:  # an awaited future's outcome its coroutine takes itself
                error = awaited.exception()
                if error is None:
                    resume = functools.partial(writer.switch, awaited.result())
                else:
                    resume = functools.partial(writer.throw, error)

    async def _make_way(self) -> None:
        """Let the loop take in and serve what arrived; pause while reads are in flight.

        A request whose bytes came during the turn is read in the loop's next
        round and begins in the one after: the write looks in the third, or
        sooner once the rounds have taken ``pause`` (many clients' reads in
        one round). (A timer would do it in one, but the loop waits on its
        sockets in whole milliseconds: a sleep of a microsecond often took
        one.) The next turn keeps the write to ``share`` of the time (half
        the time the loop had, at a share of a third), up to
        ``longest_share_turn``: with a fixed turn, a write beside ten
        readers, whose rounds take 10 ms, had got a fortieth of the time.
        """
        ended = time.perf_counter()
        for _ in range(3):
            await asyncio.sleep(0)
            if time.perf_counter() - ended >= self.pause:
                break
        first = self.reads_first
        if not first.waiting and time.perf_counter() - first.reads_done_at >= first.grace:
            # Nobody came: look half as often, up to every ``longest_turn``. Each look
            # is three turns of the loop, and a write with no read beside it made
            # thousands.
            self._allowed = min(self._allowed * 2, self.longest_turn)
            return
        end = ended + self.pause
        while (left := end - time.perf_counter()) > 0:
            if first.waiting:
                await first.counts_change(left)
                continue
            quiet = first.grace - (time.perf_counter() - first.reads_done_at)
            if quiet <= 0 or not await first.counts_change(min(quiet, left)):
                break  # the reads are done and no next one came within the grace
        away = time.perf_counter() - ended
        first.paused += away
        # Reads that keep coming leave the write its share (as ``ReadsFirst.gate``
        # does on a thread); a pause the reads cut short, as much less.
        self._allowed = (
            min(self.longest_share_turn, away * self.turn / self.pause) if self.pause else self.turn
        )


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end inside a write's greenlet; the loop awaits what it awaits."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            awaited = coroutine.throw(thrown) if thrown is not None else coroutine.send(sent)
        except StopIteration as done:
            result: T = done.value
            return result
        sent, thrown = None, None
        try:
            sent = greenlet.getcurrent().parent.switch((_AWAIT, awaited))
        except BaseException as exc:  # thrown in by the loop: the coroutine unwinds through it
            thrown = exc


class ServingPacer:
    """``graph.pacing``'s pacer in a serving process.

    A point reached in a ``LoopWriter``'s greenlet is that writer's; one
    reached on a thread (a write on a ``WritePool``, the tag jobs) goes to
    ``threads``'s gate, once ``serving_process`` has set it; on the loop
    itself (a read) nothing happens.
    """

    def __init__(self) -> None:
        self.threads: ReadsFirst | None = None

    def point(self) -> None:
        writer = _WRITERS.get(greenlet.getcurrent())
        if writer is not None:
            writer.point()
        elif self.threads is not None:
            self.threads.gate()

    def blocking(self, call: Callable[..., T], *args: Any) -> T:
        writer = _WRITERS.get(greenlet.getcurrent())
        if writer is not None:
            return writer.blocking(call, *args)
        return call(*args)

    def statement(self, call: Callable[..., T], *args: Any) -> T:
        writer = _WRITERS.get(greenlet.getcurrent())
        if writer is not None:
            return writer.statement(call, *args)
        return call(*args)


PACER = ServingPacer()


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
            if not scope.get(WRITE_SCOPE_KEY):
                counter.reads_done_at = time.perf_counter()
