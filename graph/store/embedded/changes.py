"""A new ``Shape`` from a committed ``ChangeSet``, and the overlay folded into a new base.

Nothing here changes the shape it starts from: readers may be using it.
The new overlay is a copy of the old one with whole new values for what the
change touches (a node's record, its neighbours, a customer's members), so
each of these is a cost in what the change touches plus a copy of the
overlay, which ``compact`` keeps small.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.hashing import hashes_of
from graph.models import ChangeSet, CustomerRecord, Key, NodeRecord
from graph.store.embedded.build import build_base
from graph.store.embedded.keys import NO_TYPE
from graph.store.embedded.shape import NONE, Counters, Ints, Overlay, Shape, micros_of


class _Draft:
    """The shape being made: the old one read through the entries changed so far."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        o = shape.overlay
        self.nodes = dict(o.nodes)
        self.seqs = dict(o.seqs)
        self.adj = dict(o.adj)
        self.ev = dict(o.ev)
        self.customers = dict(o.customers)
        self.members = dict(o.members)
        self.absorbed = dict(o.absorbed)
        self.anchored = dict(o.anchored)
        self.events = dict(o.events)

    def seq(self, key: Key) -> int:
        found = self.seqs.get(key)
        if found is None:
            (found,) = self.shape.seqs([key])
        assert found is not None, f"no identifier {key}"
        return found

    def record(self, seq: int) -> NodeRecord:
        found = self.nodes.get(seq)
        return found if found is not None else self.shape.record(seq)

    def neighbours(self, seq: int) -> frozenset[int]:
        found = self.adj.get(seq)
        return found if found is not None else frozenset(self.shape.neighbours(seq))

    def events_of(self, seq: int) -> tuple[int, ...]:
        found = self.ev.get(seq)
        return found if found is not None else tuple(self.shape.events_of(seq))

    def customer(self, one_id: str) -> CustomerRecord | None:
        found = self.customers.get(one_id)
        return found if found is not None else self.shape.customer(one_id)

    def member_set(self, one_id: str) -> frozenset[int]:
        found = self.members.get(one_id)
        return found if found is not None else self.shape.members(one_id)

    def absorbed_by(self, one_id: str) -> frozenset[str]:
        found = self.absorbed.get(one_id)
        return found if found is not None else self.shape.absorbed(one_id)

    def anchored_at(self, seq: int) -> frozenset[str]:
        found = self.anchored.get(seq)
        return found if found is not None else self.shape.anchored(seq)

    def overlay(self) -> Overlay:
        return Overlay(
            self.nodes,
            self.seqs,
            self.adj,
            self.ev,
            self.customers,
            self.members,
            self.absorbed,
            self.anchored,
            self.events,
        )


def applied(shape: Shape, c: ChangeSet, generation: int) -> Shape:
    """``shape`` with ``c`` applied: what the file holds once ``c`` has committed."""
    d = _Draft(shape)
    count = shape.node_count
    dirty, unwritten = set(shape.dirty), set(shape.unwritten)
    max_node = shape.counters.node
    for key in c.removed_nodes:
        seq = d.seq(key)
        record = d.record(seq)
        for other in d.neighbours(seq):
            d.adj[other] = d.neighbours(other) - {seq}
        d.adj[seq] = frozenset()
        d.ev[seq] = ()
        d.nodes[seq] = None
        d.seqs.pop(key, None)
        if record.one_id is not None:
            d.members[record.one_id] = d.member_set(record.one_id) - {seq}
        dirty.discard(seq)
        unwritten.discard(seq)
        count -= 1
    for node in c.new_nodes:
        d.nodes[node.seq] = node.copy()
        d.seqs[node.key] = node.seq
        d.adj[node.seq] = frozenset()
        d.ev[node.seq] = ()
        max_node = max(max_node, node.seq)
        count += 1
        if node.one_id is not None:
            d.members[node.one_id] = d.member_set(node.one_id) | {node.seq}
    new = {n.key for n in c.new_nodes}
    for key, node in c.node_updates.items():
        if key in new:
            continue
        seq = d.seq(key)
        updated = node.copy()
        updated.one_id = d.record(seq).one_id
        d.nodes[seq] = updated
    for key, one_id in c.assignments.items():
        seq = d.seq(key)
        record = d.record(seq).copy()
        if record.one_id == one_id and key not in new:
            continue
        if record.one_id is not None:
            d.members[record.one_id] = d.member_set(record.one_id) - {seq}
        record.one_id = one_id
        d.nodes[seq] = record
        if one_id is not None:
            d.members[one_id] = d.member_set(one_id) | {seq}
    for e in c.events:
        seqs = [d.seq(k) for k in e.keys]
        for seq in seqs:
            d.ev[seq] = (*d.events_of(seq), e.seq)
        for a, b in combinations(seqs, 2):
            if b not in d.neighbours(a):
                d.adj[a] = d.neighbours(a) | {b}
                d.adj[b] = d.neighbours(b) | {a}
        d.events[e.event_id] = e.seq
    for x in [*c.new_customers, *c.customer_updates]:
        before = d.customer(x.one_id)
        if before is not None and before.merged_into and before.merged_into != x.merged_into:
            d.absorbed[before.merged_into] = d.absorbed_by(before.merged_into) - {x.one_id}
        if x.merged_into and (before is None or before.merged_into != x.merged_into):
            d.absorbed[x.merged_into] = d.absorbed_by(x.merged_into) | {x.one_id}
        if before is not None and before.anchor is not None and before.anchor != x.anchor:
            d.anchored[before.anchor] = d.anchored_at(before.anchor) - {x.one_id}
        if x.anchor is not None and (before is None or before.anchor != x.anchor):
            d.anchored[x.anchor] = d.anchored_at(x.anchor) | {x.one_id}
        d.customers[x.one_id] = x
    if c.settles_deferred:
        dirty.clear()
    unwritten.difference_update(d.seq(k) for k in c.node_updates if k not in c.removed_nodes)
    counters = Counters(
        max_node,
        max([shape.counters.customer, *(x.seq for x in c.new_customers)]),
        max([shape.counters.event, *(e.seq for e in c.events)]),
    )
    return Shape(
        shape.base, d.overlay(), counters, generation, count, frozenset(dirty), frozenset(unwritten)
    )


def compact(shape: Shape) -> Shape:
    """The same shape with its overlay folded into a new base, and an empty overlay.

    Customers keep their rows (new ones come after), so each identifier's
    customer row carries over as it is where the overlay did not change it.
    """
    base, overlay = shape.base, shape.overlay
    if not overlay.size:
        return shape
    live = {s: r for s, r in overlay.nodes.items() if r is not None}
    removed = [s for s, r in overlay.nodes.items() if r is None]
    old = len(base.keys)
    added = [(s, r.key) for s, r in live.items() if s >= old]
    keys = base.keys.extended(added, removed, shape.counters.node + 1)
    size = len(keys)
    customers = [
        overlay.customers.get(base.one_id(row)) or base.customer(row)
        for row in range(len(base.one_ids))
    ]
    row_of = {c.one_id: row for row, c in enumerate(customers)}
    for one_id, c in overlay.customers.items():
        if one_id not in row_of:
            row_of[one_id] = len(customers)
            customers.append(c)
    first, last = _grown(base.first, size, 0), _grown(base.last, size, 0)
    blocked, shared = _grown(base.blocked, size, False), _grown(base.shared, size, False)
    strong, cust = _grown(base.strong, size, 0), _grown(base.cust, size, NONE)
    cust[removed] = NONE
    for s, r in live.items():
        first[s], last[s] = micros_of(r.first_seen), micros_of(r.last_seen)
        blocked[s], shared[s], strong[s] = r.blocked, r.shared, r.strong_neighbours
        cust[s] = NONE if r.one_id is None else row_of[r.one_id]
    assert int(np.count_nonzero(keys.type_code != NO_TYPE)) == shape.node_count
    events = list(overlay.events.items())
    new_base = build_base(
        keys,
        first,
        last,
        blocked,
        shared,
        strong,
        cust,
        _patched(base.adj_ptr, base.adj, overlay.adj),
        _patched(base.ev_ptr, base.ev, overlay.ev),
        customers,
        np.concatenate([base.event_hashes, hashes_of(e for e, _ in events)]),
        np.concatenate([base.event_seqs, np.array([s for _, s in events], dtype=np.int64)]),
    )
    return replace(shape, base=new_base, overlay=Overlay())


def _grown(values: npt.NDArray[Any], size: int, fill: object) -> npt.NDArray[Any]:
    out = np.full(size, fill, dtype=values.dtype)
    out[: len(values)] = values
    return out


def _patched(
    ptr: Ints, values: npt.NDArray[Any], replaced: Mapping[int, Collection[int]]
) -> tuple[Ints, Ints]:
    """(row, value) pairs of compressed rows, the rows in ``replaced`` replaced whole."""
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    changed = np.fromiter(replaced, dtype=np.int64, count=len(replaced))
    keep = ~np.isin(rows, changed)
    src = [rows[keep]]
    dst = [values[keep].astype(np.int64)]
    for row, new in replaced.items():
        src.append(np.full(len(new), row, dtype=np.int64))
        dst.append(np.fromiter(new, dtype=np.int64, count=len(new)))
    return np.concatenate(src), np.concatenate(dst)
