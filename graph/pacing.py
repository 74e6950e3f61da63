"""Points where a long write may step aside for reads that wait, and calls it may hand off.

A process that serves reads while it writes shares one interpreter between
them. While reads are about, the serving process (``service.pacing``) runs
a write on the event loop's own thread, in a greenlet, and takes the loop
back at these points once the write has had its turn; a write on a thread
is paused at them while reads wait. Anything else (the import, a test
without a server) installs nothing and pays one call per point.

A write calls ``step_aside`` between small pieces of its work (an event, a
row, a statement). What waits without the interpreter (a commit's fsync, a
SQLite statement, folding numpy arrays) goes through ``blocking`` (or
``statement``): the serving process runs it on a thread of its own while
the loop answers reads. A lock that another thread may hold for long (a tag build's) is
taken with ``holding``, which waits for it the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Pacer(Protocol):
    def point(self) -> None:
        """A write may step aside here."""

    def blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, run where it holds no reader up; its result or its exception."""

    def statement(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, a short wait: like ``blocking`` while reads are about."""


_pacer: Pacer | None = None


def install(pacer: Pacer | None) -> None:
    """Let ``pacer`` decide at every point and blocking call from now on (None: nobody)."""
    global _pacer
    _pacer = pacer


def step_aside() -> None:
    if _pacer is not None:
        _pacer.point()


def blocking(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``: a call that waits on the disk or runs long without the interpreter."""
    if _pacer is not None:
        result: T = _pacer.blocking(call, *args)
        return result
    return call(*args)


def statement(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``: a SQLite statement, a millisecond or two at most, in C.

    The serving process runs it off the loop while reads are about, and in
    place once none has come for a while: handing a call over costs about a
    tenth of a millisecond, and a write makes dozens.
    """
    if _pacer is not None:
        result: T = _pacer.statement(call, *args)
        return result
    return call(*args)


@contextlib.contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """``with lock``, waiting for it (when another thread holds it) as a blocking call."""
    if not lock.acquire(blocking=False):
        blocking(lock.acquire)
    try:
        yield
    finally:
        lock.release()


def every_few(items: Iterable[T], few: int = 256) -> Iterator[T]:
    """``items``, with a point before every ``few``-th one.

    For loops whose step is a few microseconds (a hash, a dict entry, a small
    numpy copy): a point per step would cost more than the step, none at all
    held reads up for the whole loop (tens to hundreds of milliseconds when
    the overlay is folded).
    """
    for n, item in enumerate(items):
        if not n % few:
            step_aside()
        yield item
