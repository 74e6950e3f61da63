"""Many rows into SQLite in few statements.

``executemany`` runs its statement once per row, and the ``sqlite3``
module's work for each run (reset, bind, step, check) costs more than
SQLite's own for a small row. An ``INSERT`` of a few hundred rows at once
runs once for all of them: a bulk write of hundreds of thousands of rows
takes markedly less time (SQLite stores the same rows either way). It also
gives up the interpreter once a statement rather than once a row: in the
serving process, a thread that gives it up and takes it back again and
again, more often than CPython's switch interval, keeps a thread waiting for
it (the event loop, with a read) from ever getting it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import chain, islice

from graph.pacing import step_aside

_MOST_ROWS = 256  # more per statement saves no more and compiles longer SQL


def insert_rows(
    db: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    verb: str = "INSERT",
) -> None:
    """Insert ``rows`` (a value per column, in order) into ``table``, in the open transaction.

    ``verb`` may be ``INSERT OR REPLACE``: a row whose key is taken replaces it.
    """
    width = len(columns)
    per = max(1, min(_MOST_ROWS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join(["?"] * width) + ")"
    full = head + ", ".join([one] * per)
    remaining = iter(rows)
    while values := list(chain.from_iterable(islice(remaining, per))):
        step_aside()
        if len(values) == per * width:
            db.execute(full, values)
        else:
            db.execute(head + ", ".join([one] * (len(values) // width)), values)
