"""Points where a long write may step aside for reads that wait.

A process that serves reads while it writes shares one interpreter between
them; CPython hands it over in turns, and a read that gives it up for a
moment (a socket, a SQLite call) waits for the writer's turn to end before
it goes on. A write calls ``step_aside`` between small pieces of its work
(an event, a row, a statement); the serving process installs a gate there
that pauses the writer while reads wait (``service.pacing``). Anything else
(the import, a test) installs nothing and pays one call per point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_gate: Callable[[], None] | None = None


def install(gate: Callable[[], None] | None) -> None:
    """Call ``gate`` at every point from now on (None: no gate)."""
    global _gate
    _gate = gate


def step_aside() -> None:
    if _gate is not None:
        _gate()


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
