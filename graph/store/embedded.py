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

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from graph.errors import StoreUnavailable
from graph.models import (
    ChangeSet,
    CustomerRecord,
    EdgeObservation,
    HistoryEntry,
    Key,
    NodeRecord,
    Pair,
    StoredEvent,
    pair,
)

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
    one_id TEXT,
    UNIQUE (type, value)
);
CREATE TABLE IF NOT EXISTS edges (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    source TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (a, b, source)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_b ON edges (b);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL,
    keys TEXT NOT NULL,
    traits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_identifiers (
    identifier INTEGER NOT NULL,
    event INTEGER NOT NULL,
    PRIMARY KEY (identifier, event)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers (
    one_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    merged_into TEXT,
    retired INTEGER NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS dirty (
    identifier INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS history_index (
    one_id TEXT NOT NULL,
    history INTEGER NOT NULL,
    PRIMARY KEY (one_id, history)
) WITHOUT ROWID;
"""


def _ts(value: datetime) -> str:
    return value.isoformat()


_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class EmbeddedStore:
    """A ``GraphStore`` in one SQLite file under ``data_dir``."""

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
        self._db.executescript(_SCHEMA)
        self._load()

    def _load(self) -> None:
        self._nodes: dict[Key, NodeRecord] = {}
        self._by_seq: dict[int, Key] = {}
        self._adj: dict[Key, set[Key]] = {}
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
            if node.one_id is not None:
                self._members.setdefault(node.one_id, set()).add(key)
        for a, b in self._db.execute("SELECT DISTINCT a, b FROM edges"):
            ka, kb = self._by_seq[a], self._by_seq[b]
            self._adj[ka].add(kb)
            self._adj[kb].add(ka)
        self._customers: dict[str, CustomerRecord] = {}
        for one_id, seq, created_at, merged_into, retired in self._db.execute(
            "SELECT one_id, seq, created_at, merged_into, retired FROM customers"
        ):
            self._customers[one_id] = CustomerRecord(
                one_id, seq, _dt(created_at), merged_into, bool(retired)
            )
        self._absorbed: dict[str, set[str]] = {}  # survivor -> OneIDs merged straight into it
        for record in self._customers.values():
            if record.merged_into:
                self._absorbed.setdefault(record.merged_into, set()).add(record.one_id)
        self._event_ids: set[str] = {r[0] for r in self._db.execute("SELECT event_id FROM events")}
        self._dirty: set[Key] = {
            self._by_seq[r[0]] for r in self._db.execute("SELECT identifier FROM dirty")
        }
        self._max_node = max(self._by_seq, default=0)
        self._max_customer = max((c.seq for c in self._customers.values()), default=0)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._max_event = int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._owner.close()

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
            nodes = self._nodes
            return {key: nodes[key] for key in keys if key in nodes}

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]:
        with self._lock:
            return {p for p in pairs if p[1] in self._adj.get(p[0], ())}

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        with self._lock:
            adjacency, empty = self._adj, set[Key]()
            return {key: adjacency.get(key, empty) for key in keys}

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        with self._lock:

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
            return {o: self._customers[o] for o in one_ids if o in self._customers}

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        with self._lock:
            return {o: set(self._members.get(o, ())) for o in one_ids}

    def known_events(self, event_ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {e for e in event_ids if e in self._event_ids}

    def dirty_keys(self) -> list[Key]:
        with self._lock:
            return sorted(self._dirty, key=lambda k: self._nodes[k].seq)

    def counters(self) -> tuple[int, int, int]:
        with self._lock:
            return self._max_node, self._max_customer, self._max_event

    # --- API reads ------------------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        with self._lock:
            seen: set[str] = set()
            current = self._customers.get(one_id)
            while current is not None and current.merged_into and current.one_id not in seen:
                seen.add(current.one_id)
                current = self._customers.get(current.merged_into)
            return None if current is None else current.one_id

    def aliases(self, one_id: str) -> list[str]:
        with self._lock:
            found: set[str] = set()
            frontier = [one_id]
            while frontier:
                absorbed = self._absorbed.get(frontier.pop(), set()) - found - {one_id}
                found |= absorbed
                frontier.extend(absorbed)
            return sorted(found)

    def _seqs(self, keys: Iterable[Key]) -> list[int]:
        return [self._nodes[k].seq for k in keys if k in self._nodes]

    def events_for(self, keys: Iterable[Key]) -> list[StoredEvent]:
        with self._lock:
            seqs = self._seqs(keys)
            rows: list[Any] = []
            for chunk in _chunks(seqs, 500):
                marks = ",".join("?" * len(chunk))
                rows.extend(
                    self._db.execute(
                        "SELECT seq, event_id, source, timestamp, received_at, keys, traits"
                        " FROM events WHERE seq IN (SELECT event FROM event_identifiers"
                        f" WHERE identifier IN ({marks}))",
                        chunk,
                    )
                )
            unique = {r[0]: r for r in rows}
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
                for _, r in sorted(unique.items())
            ]

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]:
        with self._lock:
            found = []
            for a, b in pairs:
                if a not in self._nodes or b not in self._nodes:
                    continue
                sa, sb = self._nodes[a].seq, self._nodes[b].seq
                lo, hi = (a, b) if sa < sb else (b, a)
                for source, first, last, count in self._db.execute(
                    "SELECT source, first_seen, last_seen, count FROM edges"
                    " WHERE a = ? AND b = ? ORDER BY source",
                    (min(sa, sb), max(sa, sb)),
                ):
                    found.append(EdgeObservation(lo, hi, source, _dt(first), _dt(last), count))
            return found

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]:
        with self._lock:
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
            # Every node a write touches is new, updated or removed: one dict answers all.
            seq_of = {n.key: n.seq for n in changes.node_updates.values()}
            seq_of.update((n.key, n.seq) for n in changes.new_nodes)
            for key in changes.removed_nodes:
                seq_of.setdefault(key, self._nodes[key].seq)
            nodes = self._nodes

            def seq(key: Key) -> int:
                found = seq_of.get(key)
                return found if found is not None else nodes[key].seq

            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._write(db, changes, seq)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                # Disk full, I/O error, file gone: nothing was kept, and the caller
                # should hear that the store, not its request, is the problem.
                raise StoreUnavailable(f"the embedded store could not write: {exc}") from exc
            self._mirror(changes)

    def _write(self, db: sqlite3.Connection, c: ChangeSet, seq: Any) -> None:
        texts: dict[datetime, str] = {}

        def _ts(value: datetime) -> str:
            # One batch shares timestamps between events, edges and nodes.
            text = texts.get(value)
            if text is None:
                text = texts[value] = value.isoformat()
            return text

        for key in c.removed_nodes:
            s = seq(key)
            events = [
                r[0]
                for r in db.execute(
                    "SELECT event FROM event_identifiers WHERE identifier = ?", (s,)
                )
            ]
            for event in events:
                (keys,) = db.execute("SELECT keys FROM events WHERE seq = ?", (event,)).fetchone()
                kept = [k for k in json.loads(keys) if tuple(k) != key]
                db.execute("UPDATE events SET keys = ? WHERE seq = ?", (json.dumps(kept), event))
            db.execute("DELETE FROM event_identifiers WHERE identifier = ?", (s,))
            db.execute("DELETE FROM dirty WHERE identifier = ?", (s,))
            db.execute("DELETE FROM edges WHERE a = ? OR b = ?", (s, s))
            db.execute("DELETE FROM identifiers WHERE seq = ?", (s,))
        db.executemany(
            "INSERT INTO identifiers (seq, type, value, first_seen, last_seen, blocked, shared,"
            " strong_neighbours, one_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    n.seq,
                    n.key[0],
                    n.key[1],
                    _ts(n.first_seen),
                    _ts(n.last_seen),
                    int(n.blocked),
                    int(n.shared),
                    n.strong_neighbours,
                    c.assignments.get(n.key, n.one_id),
                )
                for n in c.new_nodes
            ],
        )
        new = {n.key for n in c.new_nodes}
        db.executemany(
            "UPDATE identifiers SET last_seen = ?, first_seen = ?, blocked = ?, shared = ?,"
            " strong_neighbours = ? WHERE seq = ?",
            [
                (
                    _ts(n.last_seen),
                    _ts(n.first_seen),
                    int(n.blocked),
                    int(n.shared),
                    n.strong_neighbours,
                    n.seq,
                )
                for n in c.node_updates.values()
                if n.key not in new
            ],
        )
        db.executemany(
            "UPDATE identifiers SET one_id = ? WHERE seq = ?",
            [(one_id, seq(k)) for k, one_id in c.assignments.items() if k not in new],
        )
        rows = []
        for o in c.observations:
            sa, sb = seq(o.a), seq(o.b)
            lo, hi = (sa, sb) if sa < sb else (sb, sa)
            rows.append((lo, hi, o.source, _ts(o.first_seen), _ts(o.last_seen), o.count))
        db.executemany(
            "INSERT INTO edges (a, b, source, first_seen, last_seen, count)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (a, b, source) DO UPDATE SET"
            " first_seen = min(first_seen, excluded.first_seen),"
            " last_seen = max(last_seen, excluded.last_seen),"
            " count = count + excluded.count",
            rows,
        )
        db.executemany(
            "INSERT INTO events (seq, event_id, source, timestamp, received_at, keys, traits)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.seq,
                    e.event_id,
                    e.source,
                    _ts(e.timestamp),
                    _ts(e.received_at),
                    _to_json(e.keys),
                    _to_json(e.traits),
                )
                for e in c.events
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO event_identifiers (identifier, event) VALUES (?, ?)",
            [(seq(k), e.seq) for e in c.events for k in e.keys],
        )
        db.executemany(
            "INSERT INTO customers (one_id, seq, created_at, merged_into, retired)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (x.one_id, x.seq, _ts(x.created_at), x.merged_into, int(x.retired))
                for x in c.new_customers
            ],
        )
        db.executemany(
            "UPDATE customers SET merged_into = ?, retired = ? WHERE one_id = ?",
            [(x.merged_into, int(x.retired), x.one_id) for x in c.customer_updates],
        )
        db.executemany("DELETE FROM dirty WHERE identifier = ?", [(seq(k),) for k in c.resolved])
        db.executemany(
            "INSERT OR IGNORE INTO dirty (identifier) VALUES (?)", [(seq(k),) for k in c.dirty]
        )
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
        for key in c.removed_nodes:
            node = self._nodes.pop(key)
            self._by_seq.pop(node.seq, None)
            for other in self._adj.pop(key, set()):
                self._adj[other].discard(key)
            if node.one_id is not None:
                self._members.get(node.one_id, set()).discard(key)
        for node in c.new_nodes:
            self._nodes[node.key] = node
            self._by_seq[node.seq] = node.key
            self._adj[node.key] = set()
            self._max_node = max(self._max_node, node.seq)
        for key, node in c.node_updates.items():
            if key in self._nodes:
                node.one_id = self._nodes[key].one_id
                self._nodes[key] = node
        for key, one_id in c.assignments.items():
            node = self._nodes[key]
            if node.one_id is not None:
                members = self._members.get(node.one_id)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self._members[node.one_id]
            node.one_id = one_id
            if one_id is not None:
                self._members.setdefault(one_id, set()).add(key)
        for o in c.observations:
            self._adj[o.a].add(o.b)
            self._adj[o.b].add(o.a)
        for e in c.events:
            self._event_ids.add(e.event_id)
            self._max_event = max(self._max_event, e.seq)
        for x in c.new_customers:
            self._customers[x.one_id] = x
            self._max_customer = max(self._max_customer, x.seq)
        for x in c.customer_updates:
            self._customers[x.one_id] = x
            if x.merged_into:
                self._absorbed.setdefault(x.merged_into, set()).add(x.one_id)
        self._dirty -= c.resolved
        self._dirty -= set(c.removed_nodes)
        self._dirty |= c.dirty


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
