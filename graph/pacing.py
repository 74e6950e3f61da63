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

from collections.abc import Callable

_gate: Callable[[], None] | None = None


def install(gate: Callable[[], None] | None) -> None:
    """Call ``gate`` at every point from now on (None: no gate)."""
    global _gate
    _gate = gate


def step_aside() -> None:
    if _gate is not None:
        _gate()
