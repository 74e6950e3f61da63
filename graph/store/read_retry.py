"""Repeating a read that a commit overlapped, with a pause that lets the commit finish."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from graph.errors import StoreConflict

T = TypeVar("T")

#: How long a reader keeps trying before it reports a conflict. A commit is
#: applied in milliseconds, but on a loaded machine a writer that commits
#: batch after batch can overlap a dozen quick reads in a row, so the limit is
#: time, not a count of attempts.
READ_RETRY_SECONDS = 5.0
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


def read_steadily(attempt: Callable[[], tuple[T, bool]], budget: float = READ_RETRY_SECONDS) -> T:
    """The result of the first ``attempt`` that says no commit overlapped it.

    ``attempt`` returns what it read and whether the graph held still while
    it read. The first try starts at once; later ones wait a pause that
    doubles up to 50 ms, so a reader neither spins against a commit in
    progress nor waits long after it. Past ``budget`` seconds the caller gets
    ``StoreConflict``, which the API reports as a retryable error.
    """
    deadline = time.monotonic() + budget
    pause = _FIRST_PAUSE
    while True:
        found, steady = attempt()
        if steady:
            return found
        if time.monotonic() + pause > deadline:
            raise StoreConflict("the graph kept changing while it was read; try again")
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
