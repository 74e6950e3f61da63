"""The SQL of the embedded store's writes: one ``ChangeSet`` into the file's tables."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from graph import jsontext
from graph.models import ChangeSet, CustomerRecord
from graph.pacing import every_few, step_aside
from graph.sqlite_rows import insert_rows, update_rows
from graph.store.embedded.schema import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    IDENTIFIER_COLUMNS,
    NODE_SEQ,
    UNRESOLVED,
    set_meta,
)
from graph.store.embedded.shape import Shape

_to_json = jsontext.dumps


def write_changes(
    db: sqlite3.Connection, c: ChangeSet, shape: Shape, unresolved_from: int | None
) -> None:
    """``c`` into the tables; ``shape`` is the graph before it (for seqs and event lists)."""
    keys = [*c.removed_nodes, *c.node_updates, *c.assignments]
    seq_of = dict(zip(keys, shape.seqs(keys), strict=True))
    for key in c.removed_nodes:
        seq = seq_of[key]
        assert seq is not None
        for event in shape.events_of(seq):
            (keys_text,) = db.execute("SELECT keys FROM events WHERE seq = ?", (event,)).fetchone()
            kept = [k for k in json.loads(keys_text) if tuple(k) != key]
            db.execute("UPDATE events SET keys = ? WHERE seq = ?", (_to_json(kept), event))
        db.execute("DELETE FROM identifiers WHERE seq = ?", (seq,))
    if c.removed_nodes:  # a removed identifier's seq is never handed out again
        set_meta(db, NODE_SEQ, max([shape.counters.node, *(n.seq for n in c.new_nodes)]))
    assignments = c.assignments
    # Identifiers derived from deferred events have no row until resolved.
    unwritten = [n for n in c.node_updates.values() if n.seq in shape.unwritten]
    insert_rows(
        db,
        "identifiers",
        IDENTIFIER_COLUMNS,
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
            for n in every_few([*c.new_nodes, *unwritten], 128)
        ],
    )
    new = {n.key for n in c.new_nodes}
    new.update(n.key for n in unwritten)

    def one_id(key: tuple[str, str]) -> str | None:
        if key in assignments:
            return assignments[key]
        seq = seq_of[key]
        assert seq is not None
        return shape.record(seq).one_id

    update_rows(
        db,
        "identifiers",
        "seq",
        ("last_seen", "first_seen", "blocked", "shared", "strong_neighbours", "one_id"),
        [
            (
                n.seq,
                n.last_seen.isoformat(),
                n.first_seen.isoformat(),
                int(n.blocked),
                int(n.shared),
                n.strong_neighbours,
                one_id(k),
            )
            for k, n in every_few(c.node_updates.items(), 128)
            if k not in new
        ],
    )
    update_rows(
        db,
        "identifiers",
        "seq",
        ("one_id",),
        [
            (seq_of[k], value)
            for k, value in assignments.items()
            if k not in new and k not in c.node_updates
        ],
    )
    step_aside()
    insert_rows(
        db,
        "events",
        EVENT_COLUMNS,
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
                e.name,
                None if e.properties is None else _to_json(e.properties),
            )
            for e in every_few(c.events, 64)
            for received in [e.received_at.isoformat()]
        ],
    )
    step_aside()
    insert_customers(db, c.new_customers)
    update_rows(
        db,
        "customers",
        "one_id",
        ("merged_into", "retired", "anchor"),
        [(x.one_id, x.merged_into, int(x.retired), x.anchor) for x in c.customer_updates],
    )
    if c.deferred and c.events and unresolved_from is None:
        set_meta(db, UNRESOLVED, min(e.seq for e in c.events))
    if c.settles_deferred:
        db.execute("DELETE FROM meta WHERE name = ?", (UNRESOLVED,))
    for h in c.history:
        step_aside()
        cursor = db.execute(
            "INSERT INTO history (kind, one_id, others, at, reason, event_ids, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                h.kind,
                h.one_id,
                json.dumps(h.others),
                h.at.isoformat(),
                h.reason,
                json.dumps(h.event_ids),
                json.dumps(h.evidence, ensure_ascii=False),
            ),
        )
        db.executemany(
            "INSERT OR IGNORE INTO history_index (one_id, history) VALUES (?, ?)",
            [(o, cursor.lastrowid) for o in {h.one_id, *h.others}],
        )


def insert_customers(db: sqlite3.Connection, customers: Iterable[CustomerRecord]) -> None:
    at: dict[datetime, str] = {}  # customers made together share one moment: format it once
    rows = []
    for x in customers:
        created = at.get(x.created_at)
        if created is None:
            created = at[x.created_at] = x.created_at.isoformat()
        rows.append((x.one_id, x.seq, created, x.merged_into, int(x.retired), x.anchor))
    # In OneID order: the OneID index is then appended to, not split all over
    # (OneIDs are random, and a first load writes tens of thousands at once).
    rows.sort()
    insert_rows(db, "customers", CUSTOMER_COLUMNS, rows)
