"""A ``Shape`` read from the SQLite file alone: when there is no snapshot, or it is stale.

The events are the evidence: the graph's edges and each identifier's events
come from their keys. Events whose resolution was deferred (a bulk import
cut short, or in progress) are replayed as the resolver would have staged
them: the identifiers they bring get the next sequence numbers in event
order, and known ones widen their sightings; all of them are dirty.
"""

from __future__ import annotations

import sqlite3
from array import array
from datetime import datetime
from itertools import combinations

import numpy as np

from graph import jsontext
from graph.hashing import hashes_of
from graph.models import CustomerRecord, Key
from graph.store.embedded.build import build_base, customer_rows
from graph.store.embedded.keys import KeyIndex
from graph.store.embedded.schema import NODE_SEQ, UNRESOLVED, generation, meta_int
from graph.store.embedded.shape import Counters, Ints, Overlay, Shape, micros_of

_UTC = "+00:00"


def micros_from_text(texts: list[str]) -> Ints:
    """Moments as the store writes them (ISO 8601 in UTC) to microseconds, parsed by numpy."""
    if all(t.endswith(_UTC) for t in texts):
        stamps = np.array([t[:-6] for t in texts], dtype="datetime64[us]")
        return stamps.astype(np.int64)
    return np.fromiter(
        (micros_of(datetime.fromisoformat(t)) for t in texts), dtype=np.int64, count=len(texts)
    )


def rebuild(db: sqlite3.Connection) -> Shape:
    rows = db.execute(
        "SELECT seq, type, value, first_seen, last_seen, blocked, shared, strong_neighbours,"
        " one_id FROM identifiers ORDER BY seq"
    ).fetchall()
    found = db.execute("SELECT value FROM meta WHERE name = ?", (UNRESOLVED,)).fetchone()
    unresolved = None if found is None else int(found[0])
    seq_of: dict[Key, int] = {}
    for row in rows:
        seq_of[(row[1], row[2])] = row[0]
    # Sequence numbers are never handed out twice, even those of removed identifiers.
    top = max(rows[-1][0] if rows else 0, meta_int(db, NODE_SEQ) or 0)
    replayed: dict[int, tuple[Key, bool]] = {}  # identifiers only deferred events mention
    sighted: dict[int, tuple[int, int]] = {}  # first and last sightings in deferred events
    dirty: set[int] = set()
    edge_a, edge_b = array("q"), array("q")
    ev_node, ev_seq = array("q"), array("q")
    event_ids: list[str] = []
    event_seqs = array("q")
    max_event = 0
    for seq, event_id, timestamp, keys_text, blocked_text in db.execute(
        "SELECT seq, event_id, timestamp, keys, blocked FROM events ORDER BY seq"
    ):
        keys: list[Key] = [(k[0], k[1]) for k in jsontext.loads(keys_text)]
        event_ids.append(event_id)
        event_seqs.append(seq)
        max_event = seq
        if unresolved is not None and seq >= unresolved:
            at = micros_of(datetime.fromisoformat(timestamp))
            blocked = {(k[0], k[1]) for k in jsontext.loads(blocked_text)}
            for key in keys:
                n = seq_of.get(key)
                if n is None:
                    top += 1
                    n = seq_of[key] = top
                    replayed[n] = (key, key in blocked)
                lo, hi = sighted.get(n, (at, at))
                sighted[n] = (min(lo, at), max(hi, at))
                dirty.add(n)
        numbers = [seq_of[k] for k in keys]
        ev_node.extend(numbers)
        ev_seq.extend([seq] * len(numbers))
        if len(numbers) == 2:
            edge_a.append(numbers[0])
            edge_b.append(numbers[1])
        elif len(numbers) > 2:
            for a, b in combinations(numbers, 2):
                edge_a.append(a)
                edge_b.append(b)
    del seq_of
    size = top + 1
    key_list: list[Key | None] = [None] * size
    one_ids: list[str | None] = [None] * size
    first = np.zeros(size, dtype=np.int64)
    last = np.zeros(size, dtype=np.int64)
    blocked_flags = np.zeros(size, dtype=np.bool_)
    shared = np.zeros(size, dtype=np.bool_)
    strong = np.zeros(size, dtype=np.int32)
    if rows:
        seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        for r in rows:
            key_list[r[0]] = (r[1], r[2])
            one_ids[r[0]] = r[8]
        first[seqs] = micros_from_text([r[3] for r in rows])
        last[seqs] = micros_from_text([r[4] for r in rows])
        blocked_flags[seqs] = np.fromiter((r[5] for r in rows), dtype=np.bool_, count=len(rows))
        shared[seqs] = np.fromiter((r[6] for r in rows), dtype=np.bool_, count=len(rows))
        strong[seqs] = np.fromiter((r[7] for r in rows), dtype=np.int32, count=len(rows))
    del rows
    for n, (key, is_blocked) in replayed.items():
        key_list[n] = key
        first[n], last[n] = sighted[n]
        blocked_flags[n] = is_blocked
    for n, (lo, hi) in sighted.items():
        if n not in replayed:
            first[n] = min(first[n], lo)
            last[n] = max(last[n], hi)
    customers = [
        CustomerRecord(one_id, seq, datetime.fromisoformat(created), merged, bool(retired), anchor)
        for one_id, seq, created, merged, retired, anchor in db.execute(
            "SELECT one_id, seq, created_at, merged_into, retired, anchor FROM customers"
        )
    ]
    base = build_base(
        KeyIndex.build(key_list),
        first,
        last,
        blocked_flags,
        shared,
        strong,
        customer_rows(one_ids, {c.one_id: row for row, c in enumerate(customers)}),
        (np.frombuffer(edge_a, dtype=np.int64), np.frombuffer(edge_b, dtype=np.int64)),
        (np.frombuffer(ev_node, dtype=np.int64), np.frombuffer(ev_seq, dtype=np.int64)),
        customers,
        hashes_of(event_ids),
        np.frombuffer(event_seqs, dtype=np.int64).copy(),
    )
    count = sum(1 for k in key_list if k is not None)
    counters = Counters(top, max((c.seq for c in customers), default=0), max_event)
    return Shape(
        base,
        Overlay(),
        counters,
        generation(db),
        count,
        frozenset(dirty),
        frozenset(replayed),
    )
