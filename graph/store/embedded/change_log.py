"""Each commit's effect on the shape, kept in the file for processes that follow it.

A process that serves reads from a data dir another process writes keeps a
shape of its own. It cannot see the writer's memory, and rebuilding the
shape from the file costs seconds at a million identifiers, so the writer
logs, in the same transaction as the change, what ``changes.applied``
needs to make the next shape: identifiers and customers written, removals,
assignments, and each event's sequence number, id and keys (traits and
evidence details stay in the events table, where reads find them). A
follower applies the entries after its shape's generation, in order, and
gets the shape the writer published. An entry with no body marks a write
the shape cannot follow step by step (a bulk load): the follower reads the
shape from the file again.

Only the last ``KEEP`` generations are kept: a follower further behind
reads the shape from the file, as at open. The body is JSON, not pickle:
the data dir is read by whichever version opens it next.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from graph import jsontext
from graph.models import ChangeSet, CustomerRecord, Key, NodeRecord, StoredEvent
from graph.store.embedded.shape import micros_of, moment

KEEP = 512

SCHEMA = """
CREATE TABLE IF NOT EXISTS change_log (
    generation INTEGER PRIMARY KEY,
    body TEXT
);
"""


def append(db: sqlite3.Connection, generation: int, changes: ChangeSet | None) -> None:
    """Log ``changes`` as the write of ``generation`` (None: follow by reading the file)."""
    body = None if changes is None else jsontext.dumps(_encoded(changes))
    db.execute("INSERT OR REPLACE INTO change_log VALUES (?, ?)", (generation, body))
    if generation % 64 == 0:  # trimmed now and then: one statement less per write
        db.execute("DELETE FROM change_log WHERE generation <= ?", (generation - KEEP,))


def since(db: sqlite3.Connection, generation: int, until: int) -> list[ChangeSet] | None:
    """The changes of generations after ``generation`` to ``until``; None if one is not kept."""
    if until <= generation:
        return []
    rows = db.execute(
        "SELECT generation, body FROM change_log WHERE generation > ? AND generation <= ?"
        " ORDER BY generation",
        (generation, until),
    ).fetchall()
    if len(rows) != until - generation or any(body is None for _, body in rows):
        return None
    return [_decoded(jsontext.loads(body)) for _, body in rows]


class _Keys:
    """Each key of a change once, in order; the entries name keys by their place here."""

    def __init__(self) -> None:
        self.places: dict[Key, int] = {}

    def __call__(self, key: Key) -> int:
        return self.places.setdefault(key, len(self.places))


def _node(n: NodeRecord, place: _Keys) -> list[Any]:
    return [
        place(n.key),
        n.seq,
        micros_of(n.first_seen),
        micros_of(n.last_seen),
        n.blocked,
        n.shared,
        n.strong_neighbours,
        n.one_id,
    ]


def _node_of(row: list[Any], keys: list[Key]) -> NodeRecord:
    at, seq, first, last, blocked, shared, strong, one_id = row
    return NodeRecord(keys[at], seq, moment(first), moment(last), blocked, shared, strong, one_id)


def _customer(c: CustomerRecord) -> list[Any]:
    return [c.one_id, c.seq, micros_of(c.created_at), c.merged_into, c.retired, c.anchor]


def _customer_of(row: list[Any]) -> CustomerRecord:
    one_id, seq, created, merged_into, retired, anchor = row
    return CustomerRecord(one_id, seq, moment(created), merged_into, retired, anchor)


def _encoded(c: ChangeSet) -> dict[str, Any]:
    place = _Keys()
    new = {n.key for n in c.new_nodes}
    body = {
        "new": [_node(n, place) for n in c.new_nodes],
        # A new identifier's update is already in its record (``applied`` skips it).
        "updated": [_node(n, place) for k, n in c.node_updates.items() if k not in new],
        "removed": [place(k) for k in c.removed_nodes],
        "assigned": [[place(k), one_id] for k, one_id in c.assignments.items()],
        "events": [[e.seq, e.event_id, [place(k) for k in e.keys]] for e in c.events],
        "customers": [_customer(x) for x in c.new_customers],
        "customer_updates": [_customer(x) for x in c.customer_updates],
        "settles_deferred": c.settles_deferred,
    }
    body["keys"] = [[t, v] for t, v in place.places]
    return body


def _decoded(body: dict[str, Any]) -> ChangeSet:
    keys: list[Key] = [(t, v) for t, v in body["keys"]]
    updated = [_node_of(row, keys) for row in body["updated"]]
    return ChangeSet(
        new_nodes=[_node_of(row, keys) for row in body["new"]],
        node_updates={n.key: n for n in updated},
        removed_nodes=[keys[at] for at in body["removed"]],
        events=[
            StoredEvent(seq, event_id, "", moment(0), moment(0), [keys[at] for at in places])
            for seq, event_id, places in body["events"]
        ],
        assignments={keys[at]: one_id for at, one_id in body["assigned"]},
        new_customers=[_customer_of(row) for row in body["customers"]],
        customer_updates=[_customer_of(row) for row in body["customer_updates"]],
        settles_deferred=body["settles_deferred"],
    )
