"""The embedded store: SQLite in WAL mode for durability, an in-memory mirror for speed.

Why SQLite: it ships with Python, a committed WAL transaction survives ``kill -9``
(and, with ``synchronous=FULL``, power loss), and one file is easy to back up.
Why the mirror: resolution walks components on every ingest; answering those
walks from dictionaries instead of SQL round trips keeps bulk import close to
in-memory speed. The mirror holds only the graph's shape (keys, flags, edges,
OneIDs); evidence details, events and history are read from SQLite on demand.
The mirror is changed only after a transaction commits, so a failed write
leaves both untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from graph import jsontext
from graph.errors import StoreUnavailable
from graph.event_chunk import EventChunk
from graph.models import (
    ChangeSet,
    CustomerRecord,
    EdgeObservation,
    FirstLoad,
    HistoryEntry,
    Key,
    NodeRecord,
    Pair,
    StoredEvent,
    pair,
)
from graph.sqlite_rows import insert_rows

SCHEMA_VERSION = 5

# The events are the evidence: the graph's edges, and each edge's sources,
# first and last sighting and count, are derived from them rather than stored
# twice. Identifiers are written once resolved; an identifier that only
# deferred (bulk) events mention is derived from them when the store opens.
# So a bulk import writes one row per event, then one per identifier. Event
# ids are unique by the mirror's set, checked before every write (one process
# holds the data dir), not by an index every bulk row would have to update.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS identifiers (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    shared INTEGER NOT NULL,
    strong_neighbours INTEGER NOT NULL,
    one_id TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    source TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL,
    keys TEXT NOT NULL,
    traits TEXT NOT NULL,
    blocked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    one_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    merged_into TEXT,
    retired INTEGER NOT NULL DEFAULT 0,
    anchor INTEGER
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    one_id TEXT NOT NULL,
    others TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history_index (
    one_id TEXT NOT NULL,
    history INTEGER NOT NULL,
    PRIMARY KEY (one_id, history)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_IDENTIFIER_COLUMNS = (
    "seq",
    "type",
    "value",
    "first_seen",
    "last_seen",
    "blocked",
    "shared",
    "strong_neighbours",
    "one_id",
)
_EVENT_COLUMNS = (
    "seq",
    "event_id",
    "source",
    "timestamp",
    "received_at",
    "keys",
    "traits",
    "blocked",
)
_UNRESOLVED = "unresolved_from"  # meta: the first event seq whose resolution was deferred


def _ts(value: datetime) -> str:
    return value.isoformat()


_to_json = jsontext.dumps
_dt = datetime.fromisoformat


class EmbeddedStore:
    """A ``GraphStore`` in one SQLite file under ``data_dir``."""

    resolve_every = None  # SQLite keeps a transaction of any size on disk

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "idgraph.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = _claim(Path(data_dir))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk writes touch many pages
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._check_version()
        self._db.executescript(_SCHEMA)
        self._load()

    def _check_version(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        (tables,) = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if tables == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version == 4:
            self._upgrade_from_4()
        elif version != SCHEMA_VERSION:
            self._owner.close()
            raise StoreUnavailable(
                f"{self.path} was written by another idgraph version (store format "
                f"{version}, this one reads {SCHEMA_VERSION}); export it with that version "
                "and import it into a new data dir"
            )

    def _upgrade_from_4(self) -> None:
        """Format 4 did not keep what a OneID was issued for: take each living one's oldest.

        That is the identifier a split has always left a OneID with; an alias
        gets none, so it is never given back, as before.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("ALTER TABLE customers ADD COLUMN anchor INTEGER")
            db.execute(
                "UPDATE customers SET anchor = oldest.seq FROM (SELECT one_id, min(seq) AS seq"
                " FROM identifiers WHERE one_id IS NOT NULL GROUP BY one_id) AS oldest"
                " WHERE customers.one_id = oldest.one_id"
            )
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _load(self) -> None:
        self._stale = False
        self._unwritten: set[Key] = set()  # derived from deferred events, no row yet
        self._nodes: dict[Key, NodeRecord] = {}
        self._by_seq: dict[int, Key] = {}
        self._adj: dict[Key, set[Key]] = {}
        self._events_of: dict[Key, list[int]] = {}
        self._members: dict[str, set[Key]] = {}
        for row in self._db.execute(
            "SELECT seq, type, value, first_seen, last_seen, blocked, shared,"
            " strong_neighbours, one_id FROM identifiers"
        ):
            key = (row[1], row[2])
            node = NodeRecord(
                key, row[0], _dt(row[3]), _dt(row[4]), bool(row[5]), bool(row[6]), row[7], row[8]
            )
            self._nodes[key] = node
            self._by_seq[node.seq] = key
            self._adj[key] = set()
            self._events_of[key] = []
            if node.one_id is not None:
                self._members.setdefault(node.one_id, set()).add(key)
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (_UNRESOLVED,)).fetchone()
        self._unresolved_from: int | None = None if row is None else int(row[0])
        self._event_ids: set[str] = set()
        self._dirty: set[Key] = set()
        self._max_event = 0
        self._max_node = max(self._by_seq, default=0)
        unresolved = self._unresolved_from
        for seq, event_id, timestamp, keys_text, blocked_text in self._db.execute(
            "SELECT seq, event_id, timestamp, keys, blocked FROM events ORDER BY seq"
        ):
            keys: list[Key] = [(k[0], k[1]) for k in jsontext.loads(keys_text)]
            self._event_ids.add(event_id)
            self._max_event = seq
            if unresolved is not None and seq >= unresolved:
                blocked = {(k[0], k[1]) for k in jsontext.loads(blocked_text)}
                self._replay(keys, _dt(timestamp), blocked)
            self._index_event(seq, keys)
        self._customers: dict[str, CustomerRecord] = {}
        self._absorbed: dict[str, set[str]] = {}  # survivor -> OneIDs merged straight into it
        self._anchored: dict[int, set[str]] = {}  # identifier seq -> OneIDs issued for it
        for one_id, seq, created_at, merged_into, retired, anchor in self._db.execute(
            "SELECT one_id, seq, created_at, merged_into, retired, anchor FROM customers"
        ):
            self._track(
                CustomerRecord(one_id, seq, _dt(created_at), merged_into, bool(retired), anchor)
            )
        self._max_customer = max((c.seq for c in self._customers.values()), default=0)

    def _index_event(self, seq: int, keys: list[Key]) -> None:
        """Edges and the per-identifier event index, from one event's identifiers."""
        adjacency, events_of = self._adj, self._events_of
        for position, key in enumerate(keys):
            events_of[key].append(seq)
            neighbours = adjacency[key]
            for other in keys[position + 1 :]:
                neighbours.add(other)
                adjacency[other].add(key)

    def _replay(self, keys: list[Key], seen: datetime, blocked: set[Key]) -> None:
        """A deferred event's evidence, as the resolver would have staged it.

        New identifiers get the next sequence numbers in event order, exactly as
        a bulk loader that tracks them itself numbers them; known ones widen
        their sightings. Rows are written when the identifiers are resolved.
        """
        nodes = self._nodes
        for key in keys:
            node = nodes.get(key)
            if node is None:
                self._max_node += 1
                node = NodeRecord(key, self._max_node, seen, seen, key in blocked)
                nodes[key] = node
                self._by_seq[node.seq] = key
                self._adj[key] = set()
                self._events_of[key] = []
                self._unwritten.add(key)
            else:
                if seen < node.first_seen:
                    node.first_seen = seen
                if seen > node.last_seen:
                    node.last_seen = seen
            self._dirty.add(key)

    def _current(self) -> None:
        """Rebuild the mirror from the file if deferred writes left it behind."""
        if self._stale:
            self._load()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._owner.close()

    def exclusive(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # one process holds the data dir: it is the only writer

    def healthy(self) -> bool:
        with self._lock:
            try:
                self._db.execute("SELECT 1").fetchone()
            except sqlite3.Error:
                return False
            return True

    # --- resolver reads -------------------------------------------------------------
    def nodes(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        with self._lock:
            self._current()
            nodes = self._nodes
            return {key: nodes[key] for key in keys if key in nodes}

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]:
        with self._lock:
            self._current()
            return {p for p in pairs if p[1] in self._adj.get(p[0], ())}

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        with self._lock:
            self._current()
            adjacency, empty = self._adj, set[Key]()
            return {key: adjacency.get(key, empty) for key in keys}

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        with self._lock:
            self._current()

            def can_link(key: Key) -> bool:
                if key in linkable:
                    return linkable[key]
                node = self._nodes.get(key)
                return node is not None and node.linkable

            seen: set[Key] = set()
            edges: set[Pair] = set()
            stack = [k for k in seeds if k in self._nodes or k in linkable]
            seen.update(stack)
            while stack:
                key = stack.pop()
                if not can_link(key):
                    continue
                for other in self._adj.get(key, ()):
                    if not can_link(other):
                        continue
                    edges.add(pair(key, other))
                    if other not in seen:
                        seen.add(other)
                        stack.append(other)
            return seen, edges

    def customers(self, one_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        with self._lock:
            self._current()
            return {o: self._customers[o] for o in one_ids if o in self._customers}

    def anchored(self, seqs: Iterable[int]) -> list[CustomerRecord]:
        with self._lock:
            self._current()
            anchored, found = self._anchored, set[str]()
            for seq in seqs:
                found.update(anchored.get(seq, ()))
            return [self._customers[o] for o in sorted(found)]

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        with self._lock:
            self._current()
            return {o: set(self._members.get(o, ())) for o in one_ids}

    def known_events(self, event_ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {e for e in event_ids if e in self._event_ids}

    def dirty_keys(self) -> list[Key]:
        with self._lock:
            self._current()
            nodes = self._nodes
            return sorted(self._dirty, key=lambda k: nodes[k].seq)

    def last_event_seq(self) -> int:
        with self._lock:
            return self._max_event

    def node_count(self) -> int:
        with self._lock:
            self._current()
            return len(self._nodes)

    def counters(self) -> tuple[int, int, int]:
        with self._lock:
            self._current()
            return self._max_node, self._max_customer, self._max_event

    # --- API reads ------------------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        with self._lock:
            self._current()
            seen: set[str] = set()
            current = self._customers.get(one_id)
            while current is not None and current.merged_into and current.one_id not in seen:
                seen.add(current.one_id)
                current = self._customers.get(current.merged_into)
            return None if current is None else current.one_id

    def aliases(self, one_id: str) -> list[str]:
        with self._lock:
            self._current()
            found: set[str] = set()
            frontier = [one_id]
            while frontier:
                absorbed = self._absorbed.get(frontier.pop(), set()) - found - {one_id}
                found |= absorbed
                frontier.extend(absorbed)
            return sorted(found)

    def _event_rows(self, seqs: Iterable[int], columns: str) -> list[Any]:
        rows: list[Any] = []
        for chunk in _chunks(sorted(set(seqs)), 500):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self._db.execute(f"SELECT {columns} FROM events WHERE seq IN ({marks})", chunk)
            )
        return rows

    def events_for(self, keys: Iterable[Key]) -> list[StoredEvent]:
        with self._lock:
            self._current()
            events_of = self._events_of
            seqs = [s for k in keys for s in events_of.get(k, ())]
            rows = self._event_rows(
                seqs, "seq, event_id, source, timestamp, received_at, keys, traits"
            )
            return [
                StoredEvent(
                    r[0],
                    r[1],
                    r[2],
                    _dt(r[3]),
                    _dt(r[4]),
                    [(k[0], k[1]) for k in json.loads(r[5])],
                    json.loads(r[6]),
                )
                for r in sorted(rows)
            ]

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]:
        """Each source's evidence for each pair: the events that carry both identifiers."""
        with self._lock:
            self._current()
            nodes, events_of = self._nodes, self._events_of
            wanted: list[tuple[Key, Key, list[int]]] = []
            for a, b in pairs:
                if a not in nodes or b not in nodes:
                    continue
                lo, hi = (a, b) if nodes[a].seq < nodes[b].seq else (b, a)
                shorter, longer = sorted((events_of[a], events_of[b]), key=len)
                common = set(longer).intersection(shorter)
                if common:
                    wanted.append((lo, hi, sorted(common)))
            rows = self._event_rows(
                (s for *_, seqs in wanted for s in seqs), "seq, source, timestamp"
            )
            seen = {seq: (source, timestamp) for seq, source, timestamp in rows}
            found = []
            for lo, hi, seqs in wanted:
                by_source: dict[str, list[str]] = {}
                for seq in seqs:
                    source, timestamp = seen[seq]
                    by_source.setdefault(source, []).append(timestamp)
                for source, stamps in sorted(by_source.items()):
                    times = [_dt(t) for t in stamps]
                    found.append(
                        EdgeObservation(lo, hi, source, min(times), max(times), len(times))
                    )
            return found

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]:
        with self._lock:
            self._current()
            ids = sorted(set(one_ids))
            rows: dict[int, Any] = {}
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    "SELECT id, kind, one_id, others, at, reason, event_ids, evidence FROM history"
                    f" WHERE id IN (SELECT history FROM history_index WHERE one_id IN ({marks}))",
                    chunk,
                ):
                    rows[row[0]] = row
            return [
                HistoryEntry(
                    r[1],
                    r[2],
                    json.loads(r[3]),
                    _dt(r[4]),
                    r[5],
                    json.loads(r[6]),
                    json.loads(r[7]),
                )
                for _, r in sorted(rows.items())
            ]

    def all_keys(self) -> Iterator[Key]:
        with self._lock:
            self._current()
            keys = sorted(self._nodes, key=lambda k: self._nodes[k].seq)
        yield from keys

    def assignments(self) -> Iterator[tuple[Key, str | None]]:
        for key in self.all_keys():
            node = self._nodes.get(key)
            if node is not None:
                yield key, node.one_id

    # --- writes ---------------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        with self._lock:
            duplicate = next(
                (e.event_id for e in changes.events if e.event_id in self._event_ids), None
            )
            if duplicate is not None:
                raise sqlite3.IntegrityError(f"event {duplicate!r} is already stored")
            new = {n.key for n in changes.new_nodes}
            if (
                changes.removed_nodes
                or changes.node_updates
                or changes.customer_updates
                or any(k not in new for k in changes.assignments)
            ):
                self._current()  # these write through the mirror's sequence numbers
            self._transaction(lambda db: self._write(db, changes))
            for e in changes.events:
                self._event_ids.add(e.event_id)
                self._max_event = max(self._max_event, e.seq)
            if changes.deferred and changes.events and self._unresolved_from is None:
                self._unresolved_from = min(e.seq for e in changes.events)
            if changes.settles_deferred:
                self._unresolved_from = None
            if changes.deferred or self._stale:
                # Deferred evidence is for a bulk load, which reads nothing until it
                # resolves; the mirror catches up from the file when it is next read.
                self._stale = True
            else:
                self._mirror(changes)

    def apply_first_load(self, load: FirstLoad) -> None:
        with self._lock:

            def write(db: sqlite3.Connection) -> None:
                keys = load.keys
                insert_rows(
                    db,
                    "identifiers",
                    _IDENTIFIER_COLUMNS,
                    zip(
                        range(1, len(keys) + 1),
                        map(operator.itemgetter(0), keys),
                        map(operator.itemgetter(1), keys),
                        load.first_seen,
                        load.last_seen,
                        # sqlite3 binds an int at once, a bool (a subclass) by adapting it
                        map(int, load.blocked),
                        map(int, load.shared),
                        load.strong_neighbours,
                        load.one_ids,
                        strict=True,
                    ),
                )
                _insert_customers(db, load.customers)
                db.execute("DELETE FROM meta WHERE name = ?", (_UNRESOLVED,))

            self._transaction(write)
            self._unresolved_from = None
            self._stale = True  # a first load is read back from the file when next read

    def append_deferred(self, events: EventChunk, first_seq: int, received_at: datetime) -> None:
        with self._lock:
            if not self._event_ids.isdisjoint(events.event_ids):
                duplicate = next(e for e in events.event_ids if e in self._event_ids)
                raise sqlite3.IntegrityError(f"event {duplicate!r} is already stored")
            received = received_at.isoformat()

            def write(db: sqlite3.Connection) -> None:
                if events.spilled is not None:  # attached as "chunk": copied inside SQLite
                    db.execute(
                        "INSERT INTO events (seq, event_id, source, timestamp, received_at, keys,"
                        " traits, blocked) SELECT ? + rowid - 1, event_id, source, timestamp, ?,"
                        " keys, traits, blocked FROM chunk.events ORDER BY rowid",
                        (first_seq, received),
                    )
                else:
                    insert_rows(
                        db,
                        "events",
                        _EVENT_COLUMNS,
                        zip(
                            itertools.count(first_seq),
                            events.event_ids,
                            events.sources,
                            events.timestamps,
                            itertools.repeat(received),
                            events.keys,
                            events.traits,
                            events.blocked,
                        ),
                    )
                if self._unresolved_from is None:
                    marker = (_UNRESOLVED, str(first_seq))
                    db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", marker)

            if events.spilled is None:
                self._transaction(write)
            else:
                self._db.execute("ATTACH DATABASE ? AS chunk", (events.spilled,))
                try:
                    self._transaction(write)
                finally:
                    self._db.execute("DETACH DATABASE chunk")
            self._event_ids.update(events.event_ids)
            self._max_event = max(self._max_event, first_seq + len(events) - 1)
            if self._unresolved_from is None:
                self._unresolved_from = first_seq
            self._stale = True  # the mirror catches up from the file when it is next read

    def _transaction(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``write`` in one immediate transaction: all of it is kept, or none."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                write(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # Disk full, I/O error, file gone: nothing was kept, and the caller
            # should hear that the store, not its request, is the problem.
            raise StoreUnavailable(f"the embedded store could not write: {exc}") from exc

    def _write(self, db: sqlite3.Connection, c: ChangeSet) -> None:
        nodes, events_of = self._nodes, self._events_of
        for key in c.removed_nodes:
            for event in events_of[key]:
                (keys,) = db.execute("SELECT keys FROM events WHERE seq = ?", (event,)).fetchone()
                kept = [k for k in json.loads(keys) if tuple(k) != key]
                db.execute("UPDATE events SET keys = ? WHERE seq = ?", (_to_json(kept), event))
            db.execute("DELETE FROM identifiers WHERE seq = ?", (nodes[key].seq,))
        assignments = c.assignments
        # Identifiers derived from deferred events have no row until resolved.
        unwritten = [n for k, n in c.node_updates.items() if k in self._unwritten]
        insert_rows(
            db,
            "identifiers",
            _IDENTIFIER_COLUMNS,
            [
                (
                    n.seq,
                    n.key[0],
                    n.key[1],
                    n.first_seen.isoformat(),
                    n.last_seen.isoformat(),
                    int(n.blocked),
                    int(n.shared),
                    n.strong_neighbours,
                    assignments.get(n.key, n.one_id),
                )
                for n in [*c.new_nodes, *unwritten]
            ],
        )
        new = {n.key for n in c.new_nodes}
        new.update(n.key for n in unwritten)
        db.executemany(
            "UPDATE identifiers SET last_seen = ?, first_seen = ?, blocked = ?, shared = ?,"
            " strong_neighbours = ?, one_id = ? WHERE seq = ?",
            [
                (
                    n.last_seen.isoformat(),
                    n.first_seen.isoformat(),
                    int(n.blocked),
                    int(n.shared),
                    n.strong_neighbours,
                    assignments[k] if k in assignments else nodes[k].one_id,
                    n.seq,
                )
                for k, n in c.node_updates.items()
                if k not in new
            ],
        )
        db.executemany(
            "UPDATE identifiers SET one_id = ? WHERE seq = ?",
            [
                (one_id, nodes[k].seq)
                for k, one_id in assignments.items()
                if k not in new and k not in c.node_updates
            ],
        )
        insert_rows(
            db,
            "events",
            _EVENT_COLUMNS,
            [
                (
                    e.seq,
                    e.event_id,
                    e.source,
                    e.timestamp.isoformat(),
                    received,
                    _to_json(e.keys),
                    _to_json(e.traits),
                    _to_json(e.blocked) if e.blocked else "[]",
                )
                for e in c.events
                for received in [_ts(e.received_at)]
            ],
        )
        _insert_customers(db, c.new_customers)
        db.executemany(
            "UPDATE customers SET merged_into = ?, retired = ?, anchor = ? WHERE one_id = ?",
            [(x.merged_into, int(x.retired), x.anchor, x.one_id) for x in c.customer_updates],
        )
        if c.deferred and c.events and self._unresolved_from is None:
            db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                (_UNRESOLVED, str(min(e.seq for e in c.events))),
            )
        if c.settles_deferred:
            db.execute("DELETE FROM meta WHERE name = ?", (_UNRESOLVED,))
        for h in c.history:
            cursor = db.execute(
                "INSERT INTO history (kind, one_id, others, at, reason, event_ids, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    h.kind,
                    h.one_id,
                    json.dumps(h.others),
                    _ts(h.at),
                    h.reason,
                    json.dumps(h.event_ids),
                    json.dumps(h.evidence, ensure_ascii=False),
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO history_index (one_id, history) VALUES (?, ?)",
                [(o, cursor.lastrowid) for o in {h.one_id, *h.others}],
            )

    def _mirror(self, c: ChangeSet) -> None:
        nodes, adjacency, events_of = self._nodes, self._adj, self._events_of
        for key in c.removed_nodes:
            node = nodes.pop(key)
            self._by_seq.pop(node.seq, None)
            for other in adjacency.pop(key, set()):
                adjacency[other].discard(key)
            events_of.pop(key, None)
            self._dirty.discard(key)
            self._unwritten.discard(key)
            if node.one_id is not None:
                self._members.get(node.one_id, set()).discard(key)
        for node in c.new_nodes:
            nodes[node.key] = node
            self._by_seq[node.seq] = node.key
            adjacency[node.key] = set()
            events_of[node.key] = []
            self._max_node = max(self._max_node, node.seq)
        for key, node in c.node_updates.items():
            if key in nodes:
                node.one_id = nodes[key].one_id
                nodes[key] = node
        for key, one_id in c.assignments.items():
            node = nodes[key]
            if node.one_id is not None:
                members = self._members.get(node.one_id)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self._members[node.one_id]
            node.one_id = one_id
            if one_id is not None:
                self._members.setdefault(one_id, set()).add(key)
        for e in c.events:
            self._index_event(e.seq, e.keys)
        for x in c.new_customers:
            self._track(x)
            self._max_customer = max(self._max_customer, x.seq)
        for x in c.customer_updates:
            self._track(x)
        self._unwritten.difference_update(c.node_updates)
        if c.settles_deferred:
            self._dirty.clear()

    def _track(self, record: CustomerRecord) -> None:
        """Keep ``record`` and the indexes over it: who is merged into whom, what for."""
        before = self._customers.get(record.one_id)
        if before is not None and before.merged_into:
            self._absorbed[before.merged_into].discard(record.one_id)
        self._customers[record.one_id] = record
        if record.merged_into:
            self._absorbed.setdefault(record.merged_into, set()).add(record.one_id)
        if record.anchor is not None:
            self._anchored.setdefault(record.anchor, set()).add(record.one_id)


def _insert_customers(db: sqlite3.Connection, customers: Iterable[CustomerRecord]) -> None:
    at: dict[datetime, str] = {}  # customers made together share one moment: format it once
    rows = []
    for x in customers:
        created = at.get(x.created_at)
        if created is None:
            created = at[x.created_at] = _ts(x.created_at)
        rows.append((x.one_id, x.seq, created, x.merged_into, int(x.retired), x.anchor))
    # In OneID order: the OneID index is then appended to, not split all over
    # (OneIDs are random, and a first load writes tens of thousands at once).
    rows.sort()
    columns = ("one_id", "seq", "created_at", "merged_into", "retired", "anchor")
    insert_rows(db, "customers", columns, rows)


def _claim(data_dir: Path) -> Any:
    """Hold the data dir for this process: two processes would each trust a stale mirror.

    The lock is released by the OS when the process dies, so ``kill -9`` never
    leaves a stale lock behind.
    """
    handle = open(data_dir / "idgraph.lock", "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreUnavailable(
            f"data dir {data_dir} is in use by idgraph process {holder}; stop it first "
            "(the embedded store has one process at a time)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
