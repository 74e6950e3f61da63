"""A new ``Shape`` from a committed ``ChangeSet``.

Nothing here changes the shape it starts from: readers may be using it.
The new overlay is a copy of the old one with whole new values for what the
change touches (a node's record, its neighbours, a customer's members), so
each of these is a cost in what the change touches plus a copy of the
overlay, which ``compaction`` keeps small.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import TypeVar

from graph.models import ChangeSet, CustomerRecord, Key, NodeRecord
from graph.pacing import step_aside
from graph.store.embedded.shape import Counters, Overlay, Shape

K = TypeVar("K")
V = TypeVar("V")


def _copied(entries: Mapping[K, V]) -> dict[K, V]:
    step_aside()
    return dict(entries)


class _Draft:
    """The shape being made: the old one read through the entries changed so far."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        o = shape.overlay
        # Each copy holds the interpreter throughout (a millisecond or so for the
        # tens of thousands of entries an overlay grows to): a point between them.
        self.nodes = _copied(o.nodes)
        self.seqs = _copied(o.seqs)
        self.adj = _copied(o.adj)
        self.ev = _copied(o.ev)
        self.customers = _copied(o.customers)
        self.members = _copied(o.members)
        self.absorbed = _copied(o.absorbed)
        self.anchored = _copied(o.anchored)
        self.events = _copied(o.events)
        self._stored: dict[Key, int] = {}

    def known(self, keys: list[Key]) -> None:
        """Look the stored ones among ``keys`` up at once: one pass, not one per key."""
        for key, seq in zip(keys, self.shape.seqs(keys), strict=True):
            if seq is not None:
                self._stored.setdefault(key, seq)

    def seq(self, key: Key) -> int:
        found = self.seqs.get(key)
        if found is None:
            found = self._stored.get(key)
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
    d.known(
        [*c.removed_nodes, *c.node_updates, *c.assignments, *(k for e in c.events for k in e.keys)]
    )
    count = shape.node_count
    dirty, unwritten = set(shape.dirty), set(shape.unwritten)
    max_node = shape.counters.node
    for key in c.removed_nodes:
        step_aside()
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
        step_aside()
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
        step_aside()
        if key in new:
            continue
        seq = d.seq(key)
        updated = node.copy()
        updated.one_id = d.record(seq).one_id
        d.nodes[seq] = updated
    for key, one_id in c.assignments.items():
        step_aside()
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
        step_aside()
        seqs = [d.seq(k) for k in e.keys]
        for seq in seqs:
            d.ev[seq] = (*d.events_of(seq), e.seq)
        for a, b in combinations(seqs, 2):
            if b not in d.neighbours(a):
                d.adj[a] = d.neighbours(a) | {b}
                d.adj[b] = d.neighbours(b) | {a}
        d.events[e.event_id] = e.seq
    for x in [*c.new_customers, *c.customer_updates]:
        step_aside()
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
