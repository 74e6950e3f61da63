"""Tags in the embedded store's SQLite file: rows only, none of it in the in-memory shape.

A ``TagWrites`` that follows an identity change is written by the graph's
writer inside that change's transaction (``write_tag_rows``). One of its
own (a manual tag, time passing, a build) goes through a connection of its
own, as accounts do: it changes nothing of the graph, so it must not count
as one of the graph's generations (readers would wait for a shape that never
comes). SQLite's file lock serialises the two writers' commits. Reads use
the read-only connections the graph's reads use.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from graph import jsontext
from graph.errors import StoreUnavailable
from graph.pacing import blocking, every_few, holding, statement, step_aside
from graph.sqlite_rows import insert_rows
from graph.store.embedded.pragmas import set_up_writer
from graph.store.recent import Recent
from graph.tags.definitions import is_segment
from graph.tags.models import (
    CustomerTag,
    ManualTag,
    StoredDefinition,
    TagChange,
    TagSource,
    TagStatus,
    TagWrites,
)
from graph.tags.rollups import Bucket, Rollup, micros, moment_of

TAG_SCHEMA = """
CREATE TABLE IF NOT EXISTS tag_definitions (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    changed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tag_definition_versions (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customer_tags (
    one_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    value TEXT NOT NULL,
    since TEXT NOT NULL,
    source TEXT NOT NULL,
    by TEXT,
    PRIMARY KEY (one_id, tag_id)
) WITHOUT ROWID;
DROP INDEX IF EXISTS customer_tags_by_tag;
CREATE TABLE IF NOT EXISTS manual_tags (
    one_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    by TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (one_id, tag_id)
) WITHOUT ROWID;
-- What each write changed of one customer's tags: one row for all of them, so a
-- write touching hundreds of customers adds hundreds of rows, not thousands.
CREATE TABLE IF NOT EXISTS tag_history (
    id INTEGER PRIMARY KEY,
    one_id TEXT NOT NULL,
    at TEXT NOT NULL,
    cause TEXT NOT NULL,
    changes TEXT NOT NULL -- [[tag, before, after], ...], null: did not have it
);
CREATE INDEX IF NOT EXISTS tag_history_by_customer ON tag_history (one_id, id);
-- Saved segments' membership changes again, by segment: "who was in on that day"
-- reads one segment's changes, not every customer's history.
CREATE TABLE IF NOT EXISTS segment_log (
    id INTEGER PRIMARY KEY,
    tag_id TEXT NOT NULL,
    one_id TEXT NOT NULL,
    at TEXT NOT NULL,
    entered INTEGER NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segment_log_by_segment ON segment_log (tag_id, id);
-- The log as first kept, one row a change: moved into tag_history once.
BEGIN;
CREATE TABLE IF NOT EXISTS tag_log (
    id INTEGER PRIMARY KEY,
    one_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    before TEXT,
    after TEXT,
    at TEXT NOT NULL,
    cause TEXT NOT NULL
);
INSERT INTO tag_history (one_id, at, cause, changes)
    SELECT one_id, at, cause, json_array(json_array(tag_id, json(before), json(after)))
    FROM tag_log ORDER BY id;
DROP TABLE tag_log;
COMMIT;
CREATE TABLE IF NOT EXISTS tag_due (
    one_id TEXT PRIMARY KEY,
    due INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_due_by_time ON tag_due (due);
-- Rollups as first kept (a summary beside each bucket's events): gone, as a
-- customer without a rollup has it made again from its events when next touched.
DROP TABLE IF EXISTS tag_rollups;
DROP TABLE IF EXISTS tag_traits;
CREATE TABLE IF NOT EXISTS tag_buckets (
    one_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (one_id, day, name, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tag_heads (
    one_id TEXT PRIMARY KEY,
    head TEXT NOT NULL
) WITHOUT ROWID;
"""

_dumps = jsontext.dumps
_BUCKET_COLUMNS = ("one_id", "day", "name", "source", "events")


def _in(column: str) -> str:
    return f"{column} IN (SELECT value FROM json_each(?))"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _definition(row: tuple[str, int, str, str, float, str]) -> StoredDefinition:
    _, version, text, status, progress, changed_at = row
    return StoredDefinition(
        StoredDefinition.parse(text), version, TagStatus(status), progress, _when(changed_at)
    )


# Customers whose rollups and tags stay in memory as objects, about 18 a
# customer that the cyclic garbage collector tracks; a full collection walks
# them all with the interpreter held. After a tag build had filled 20,000,
# full collections took 290-395 ms every 20-25 s under 50 resolve clients,
# each a stall of every read; with 2,000, 22-130 ms. A customer not held is
# read from the file, as after a restart: API ingest with 21 tags went in
# at 1,950 and 1,933 events/s against 1,946 and 2,218 with 20,000.
RECENT_CUSTOMERS = 2_000


class SqliteTags:
    """The tag store protocol on one SQLite file; ``read`` gives a read-only connection."""

    def __init__(
        self, path: Path, read: Callable[[], sqlite3.Connection], cached: int = RECENT_CUSTOMERS
    ) -> None:
        self._read = read
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        set_up_writer(self._db)
        self._lock = threading.Lock()
        # The rollups and tags of the customers written or read most recently, as
        # objects: one process owns the file, so what it committed last is what the
        # file holds. Neither is changed once made (``Rollup.with_events``), so
        # readers and the writer share them.
        self._rollups: Recent[Rollup] = Recent(cached)
        self._tags: Recent[dict[str, CustomerTag]] = Recent(cached)

    def close(self) -> None:
        self._db.close()

    def _transaction(self, write: Callable[[sqlite3.Connection], None]) -> None:
        with holding(self._lock):
            db = self._db
            try:
                blocking(db.execute, "BEGIN IMMEDIATE")
                try:
                    write(db)
                    blocking(db.execute, "COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"the embedded store could not write tags: {exc}") from exc

    def _rows(self, query: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
        return statement(self._fetch, query, params)

    def _fetch(self, query: str, params: tuple[object, ...]) -> list[tuple]:  # type: ignore[type-arg]
        return self._read().execute(query, params).fetchall()

    def tag_definitions(self) -> list[StoredDefinition]:
        rows = self._rows("SELECT * FROM tag_definitions ORDER BY id")
        return [_definition(r) for r in rows]

    def definition_versions(self, tag_id: str) -> list[StoredDefinition]:
        rows = self._rows(
            "SELECT id, version, definition, 'READY', 1.0, changed_at"
            " FROM tag_definition_versions WHERE id = ? ORDER BY version",
            tag_id,
        )
        return [_definition(r) for r in rows]

    def save_definition(self, stored: StoredDefinition, keep_version: bool = True) -> None:
        self._transaction(lambda db: save_definition(db, stored, keep_version))

    def delete_definition(self, tag_id: str) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM tag_definitions WHERE id = ?", (tag_id,))

        self._transaction(delete)

    def rollups(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        return self._rollups.read(set(one_ids), self._stored_rollups)

    def committed(self, writes: TagWrites) -> None:
        """``writes`` is in the file now: keep what it wrote, forget the customers it dropped."""
        for rollup in writes.rollups.values():
            rollup.settle()
        self._rollups.committed(writes.rollups, writes.dropped | writes.rebuilt)
        self._tags.committed(writes.tags, writes.dropped)

    def rollup_heads(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        rows = self._rows(
            f"SELECT one_id, head FROM tag_heads WHERE {_in('one_id')}",
            _dumps(sorted(set(one_ids))),
        )
        return {one_id: Rollup.from_head(json.loads(head)) for one_id, head in rows}

    def _stored_rollups(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        wanted = _dumps(sorted(set(one_ids)))
        found: dict[str, Rollup] = {}
        for one_id, head in self._rows(
            f"SELECT one_id, head FROM tag_heads WHERE {_in('one_id')}", wanted
        ):
            found[one_id] = Rollup.from_head(json.loads(head))
        for one_id, day, name, source, events in self._rows(
            f"SELECT one_id, day, name, source, events FROM tag_buckets WHERE {_in('one_id')}",
            wanted,
        ):
            rollup = found.get(one_id)
            if rollup is None:
                rollup = found[one_id] = Rollup()
            # An identity event has no name: '' here (a name is never blank).
            rollup.buckets[(day, name or None, source)] = Bucket.stored(events)
        return found

    def customer_tags(self, one_ids: Iterable[str]) -> dict[str, dict[str, CustomerTag]]:
        wanted = set(one_ids)
        found = self._tags.read(wanted, self._stored_tags)
        return {o: tags for o, tags in found.items() if tags}

    def _stored_tags(self, one_ids: Iterable[str]) -> dict[str, dict[str, CustomerTag]]:
        one_ids = set(one_ids)
        found: dict[str, dict[str, CustomerTag]] = {o: {} for o in one_ids}
        for one_id, tag_id, value, since, source, by in self._rows(
            "SELECT one_id, tag_id, value, since, source, by FROM customer_tags"
            f" WHERE {_in('one_id')}",
            _dumps(sorted(set(one_ids))),
        ):
            found.setdefault(one_id, {})[tag_id] = CustomerTag(
                json.loads(value), _when(since), TagSource(source), by
            )
        return found

    def manual_tags(self, one_ids: Iterable[str]) -> list[ManualTag]:
        rows = self._rows(
            f"SELECT one_id, tag_id, by, at FROM manual_tags WHERE {_in('one_id')}",
            _dumps(sorted(set(one_ids))),
        )
        return [ManualTag(o, t, by, _when(at)) for o, t, by, at in rows]

    def tag_changes(self, one_ids: Iterable[str], tag_id: str | None) -> list[TagChange]:
        rows = self._rows(
            f"SELECT one_id, at, cause, changes FROM tag_history WHERE {_in('one_id')} ORDER BY id",
            _dumps(sorted(set(one_ids))),
        )
        found = []
        for one_id, at, cause, changes in rows:
            moment, why = _when(at), json.loads(cause)
            for changed, before, after in json.loads(changes):
                if tag_id is None or changed == tag_id:
                    found.append(TagChange(one_id, changed, before, after, moment, why))
        return found

    def segment_log(self, tag_id: str) -> list[TagChange]:
        rows = self._rows(
            "SELECT one_id, at, entered, cause FROM segment_log WHERE tag_id = ? ORDER BY id",
            tag_id,
        )
        return [
            TagChange(
                o,
                tag_id,
                None if entered else True,
                True if entered else None,
                _when(at),
                json.loads(cause),
            )
            for o, at, entered, cause in rows
        ]

    def due(self, until: datetime, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT one_id FROM tag_due WHERE due <= ? ORDER BY due LIMIT ?",
            micros(until),
            limit,
        )
        return [r[0] for r in rows]

    def tagged(self, tag_id: str) -> list[str]:
        rows = self._rows("SELECT one_id FROM customer_tags WHERE tag_id = ?", tag_id)
        return [r[0] for r in rows]

    def tag_state(
        self, one_ids: Iterable[str]
    ) -> tuple[dict[str, Rollup], dict[str, dict[str, CustomerTag]], dict[str, datetime]]:
        wanted = set(one_ids)
        rollups = self.rollups(wanted)
        step_aside()
        tags = self.customer_tags(wanted)
        step_aside()
        return rollups, tags, self.due_of(wanted)

    def due_of(self, one_ids: Iterable[str]) -> dict[str, datetime]:
        rows = self._rows(
            f"SELECT one_id, due FROM tag_due WHERE {_in('one_id')}", _dumps(sorted(set(one_ids)))
        )
        return {o: moment_of(d) for o, d in rows}

    def forget_rollups(self) -> None:
        def forget(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM tag_buckets")
            db.execute("DELETE FROM tag_heads")

        self._transaction(forget)
        self._rollups.clear()

    def write_tags(self, writes: TagWrites) -> None:
        if writes:
            self._transaction(lambda db: write_tag_rows(db, writes))
            self.committed(writes)


def save_definition(db: sqlite3.Connection, stored: StoredDefinition, keep_version: bool) -> None:
    text, at = stored.as_json(), stored.changed_at.isoformat()
    db.execute(
        "INSERT OR REPLACE INTO tag_definitions"
        " (id, version, definition, status, progress, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
        (stored.definition.id, stored.version, text, stored.status.value, stored.progress, at),
    )
    if keep_version:
        db.execute(
            "INSERT OR REPLACE INTO tag_definition_versions (id, version, definition, changed_at)"
            " VALUES (?, ?, ?, ?)",
            (stored.definition.id, stored.version, text, at),
        )


def write_tag_rows(db: sqlite3.Connection, w: TagWrites) -> None:
    """``w`` into the tag tables, inside the caller's transaction."""
    gone = _dumps(sorted(w.dropped | w.rebuilt))
    for table in ("tag_buckets", "tag_heads"):
        statement(db.execute, f"DELETE FROM {table} WHERE {_in('one_id')}", (gone,))
    if w.dropped:
        dropped = _dumps(sorted(w.dropped))
        for table in ("customer_tags", "tag_due"):
            statement(db.execute, f"DELETE FROM {table} WHERE {_in('one_id')}", (dropped,))
    rollup_rows = []
    trait_rows = []
    for one_id, rollup in w.rollups.items():
        step_aside()
        whole = one_id in w.rebuilt
        for key, bucket in rollup.buckets.items():
            if whole or bucket.changed:
                day, name, source = key
                rollup_rows.append((one_id, day, name or "", source, bucket.text()))
        if whole or rollup.head_changed:
            trait_rows.append((one_id, _dumps(rollup.head_json())))
    replace = "INSERT OR REPLACE"
    insert_rows(db, "tag_buckets", _BUCKET_COLUMNS, rollup_rows, replace)
    insert_rows(db, "tag_heads", ("one_id", "head"), trait_rows, replace)
    _delete_pairs(
        db,
        "customer_tags",
        [(o, t) for o, rows in w.rows.items() for t, x in rows.items() if x is None],
    )
    insert_rows(
        db,
        "customer_tags",
        ("one_id", "tag_id", "value", "since", "source", "by"),
        (
            (o, t, _dumps(x.value), x.since.isoformat(), x.source.value, x.by)
            for o, rows in every_few(w.rows.items(), 64)
            for t, x in rows.items()
            if x is not None
        ),
        replace,
    )
    history = _history_rows(every_few(w.changes, 64))
    insert_rows(db, "tag_history", ("one_id", "at", "cause", "changes"), history)
    insert_rows(
        db,
        "segment_log",
        ("tag_id", "one_id", "at", "entered", "cause"),
        (
            (c.tag_id, c.one_id, c.at.isoformat(), c.after is not None, _dumps(c.cause))
            for c in w.changes
            if is_segment(c.tag_id)
        ),
    )
    no_longer_due = [o for o, d in w.due.items() if d is None]
    if no_longer_due:
        db.execute(f"DELETE FROM tag_due WHERE {_in('one_id')}", (_dumps(no_longer_due),))
    insert_rows(
        db,
        "tag_due",
        ("one_id", "due"),
        ((o, micros(d)) for o, d in w.due.items() if d is not None),
        replace,
    )
    insert_rows(
        db,
        "manual_tags",
        ("one_id", "tag_id", "by", "at"),
        ((m.one_id, m.tag_id, m.by, m.at.isoformat()) for m in w.manual_added),
        replace,
    )
    _delete_pairs(db, "manual_tags", w.manual_removed)


def _delete_pairs(db: sqlite3.Connection, table: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Delete the rows of ``table`` keyed by each (one_id, tag_id), in one statement."""
    if pairs:
        db.execute(
            f"DELETE FROM {table} WHERE (one_id, tag_id) IN"
            " (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
            (_dumps(list(pairs)),),
        )


def _history_rows(changes: Iterable[TagChange]) -> list[tuple[str, str, str, str]]:
    """One row per customer and cause: a write lists its changes customer by customer."""
    rows = []
    for _, grouped in itertools.groupby(changes, key=lambda c: (c.one_id, c.at, id(c.cause))):
        group = list(grouped)
        first = group[0]
        changed = _dumps([[c.tag_id, c.before, c.after] for c in group])
        rows.append((first.one_id, first.at.isoformat(), _dumps(first.cause), changed))
    return rows
