"""Points where a long write can step aside for reads that wait.

A process that serves reads while it writes shares one interpreter between
them; CPython hands it over in turns, and a read that gives it up for a
moment (a socket, a SQLite call) waits for the writer's turn to end before
it goes on. The serving process installs a gate here that, while reads are
in flight, pauses the writer at these points once it has had its share.
Anything else (the import, a test) installs nothing and pays one call.
"""

from __future__ import annotations

from collections.abc import Callable

_gate: Callable[[], None] | None = None


def install(gate: Callable[[], None] | None) -> None:
    global _gate
    _gate = gate


def checkpoint() -> None:
    if _gate is not None:
        _gate()
