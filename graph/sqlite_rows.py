"""Many rows into SQLite in few statements.

``executemany`` runs its statement once per row, and the ``sqlite3``
module's work for each run (reset, bind, step, check) costs more than
SQLite's own for a small row. An ``INSERT`` of a few hundred rows at once
runs once for all of them: a bulk write of hundreds of thousands of rows
takes markedly less time (SQLite stores the same rows either way). It also
gives up the interpreter once a statement rather than once a row: in the
serving process, a thread that gives it up and takes it back again and
again, more often than CPython's switch interval, keeps a thread waiting for
it (the event loop, with a read) from ever getting it. Each statement is a
blocking call (``graph.pacing``): a serving process runs it off the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, islice

from graph import pacing
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
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    one = _placeholders(len(columns))
    _in_statements(db, len(columns), rows, lambda count: head + ", ".join([one] * count))


def update_rows(
    db: sqlite3.Connection,
    table: str,
    key: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``key`` is each row's first value.

    Each of ``rows`` is the key followed by a value per column. Rows whose key
    is not in the table change nothing; of a key given twice the last row
    counts, as if each row were an ``UPDATE`` of its own.
    """
    sets = ", ".join(f"{c} = given.column{n}" for n, c in enumerate(columns, start=2))
    one = _placeholders(len(columns) + 1)

    def statement(count: int) -> str:
        return (
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([one] * count)}) AS given"
            f" WHERE {table}.{key} = given.column1"
        )

    last = {row[0]: row for row in rows}.values()
    _in_statements(db, len(columns) + 1, last, statement)


def _placeholders(width: int) -> str:
    return "(" + ", ".join(["?"] * width) + ")"


def _in_statements(
    db: sqlite3.Connection,
    width: int,
    rows: Iterable[Sequence[object]],
    statement: Callable[[int], str],
) -> None:
    """``rows`` of ``width`` values, a few hundred to each ``statement(count)``."""
    per = max(1, min(_MOST_ROWS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    full = statement(per)
    remaining = iter(rows)
    while values := list(chain.from_iterable(islice(remaining, per))):
        step_aside()
        count = len(values) // width
        pacing.statement(db.execute, full if count == per else statement(count), values)
