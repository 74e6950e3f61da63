"""Many rows into and out of SQLite in few statements, with points to step aside between them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graph import pacing
from graph.sqlite_rows import insert_rows, update_rows


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
    insert_rows(db, "t", ("k", "a", "b"), [(k, f"a{k}", k) for k in range(1000)])
    yield db
    db.close()


class CountPoints:
    def __init__(self) -> None:
        self.passed: list[int] = []

    def point(self) -> None:
        self.passed.append(1)

    def blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        return call(*args)

    def statement(self, call: Callable[..., Any], *args: Any) -> Any:
        return call(*args)


@pytest.fixture
def points() -> Iterator[list[int]]:
    counting = CountPoints()
    pacing.install(counting)
    yield counting.passed
    pacing.install(None)


def test_update_rows_sets_each_keys_columns_over_several_statements(
    db: sqlite3.Connection, points: list[int]
) -> None:
    update_rows(db, "t", "k", ("a", "b"), [(k, f"new{k}", -k) for k in range(0, 1000, 2)])

    rows = db.execute("SELECT k, a, b FROM t ORDER BY k").fetchall()
    assert rows[:4] == [(0, "new0", 0), (1, "a1", 1), (2, "new2", -2), (3, "a3", 3)]
    assert sum(1 for _, a, _ in rows if a.startswith("new")) == 500
    assert len(points) == 2  # 500 rows: 256 a statement, a point before each


def test_update_rows_last_row_of_a_key_counts_and_unknown_keys_change_nothing(
    db: sqlite3.Connection,
) -> None:
    update_rows(db, "t", "k", ("a",), [(5, "first"), (5000, "nobody"), (5, "last")])

    assert db.execute("SELECT a FROM t WHERE k = 5").fetchone() == ("last",)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    assert db.execute("SELECT count(*) FROM t WHERE a NOT LIKE 'a%'").fetchone() == (1,)


def test_update_rows_of_nothing_runs_no_statement(db: sqlite3.Connection) -> None:
    changes = db.total_changes
    update_rows(db, "t", "k", ("a",), [])
    assert db.total_changes == changes
