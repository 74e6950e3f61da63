"""The pending write of one batch: the nodes it touches, its new edges, its change set.

Reads go through the batch so that the resolver and the sharing rules see the
stored graph with this batch's changes on top, before anything is written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from graph.identifiers import IdentifierRegistry
from graph.models import ChangeSet, Key, NodeRecord, Pair
from graph.store.protocol import GraphStore


class StoredReads(Protocol):
    """What the store holds until a batch is applied, as the batch read it (once each)."""

    def stored(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]: ...

    def stored_members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]: ...


class Batch:
    """The pending state of one write: touched nodes, new edges and the change set."""

    def __init__(self, store: GraphStore, registry: IdentifierRegistry, now: datetime) -> None:
        self.store = store
        self.registry = registry
        self.now = now
        self.changes = ChangeSet()
        self.pending: dict[Key, NodeRecord] = {}
        self.original: dict[Key, NodeRecord] = {}  # stored state of pending nodes, read-only
        self.removed: set[Key] = set()
        # Nodes whose structure changed: new, with a new edge, or losing one. Evidence
        # that only repeats known edges changes no rule's input, so it is not here.
        self.changed: set[Key] = set()
        self.new_edges: dict[Key, set[Key]] = {}
        # What this batch read from the store: the store does not change under a batch
        # (it holds the write lock), and a networked store pays a round trip per read.
        self._records: dict[Key, NodeRecord] = {}
        self._absent: set[Key] = set()
        self._stored_neighbours: dict[Key, set[Key]] = {}
        self._members: dict[str, set[Key]] = {}
        self._memberless: set[str] = set()
        node_seq, customer_seq, event_seq = store.counters()
        self.node_seq = itertools.count(node_seq + 1)
        self.customer_seq = itertools.count(customer_seq + 1)
        self.event_seq = itertools.count(event_seq + 1)

    def load(self, keys: Iterable[Key]) -> None:
        """Bring stored nodes into the batch, so changes to them are written back."""
        wanted = [k for k in keys if k not in self.pending]
        # Records this batch has read already are what the store holds: nothing
        # is written until the batch applies, so only the others are read.
        self._read_records(wanted)
        records = self._records
        for key in wanted:
            stored = records.get(key)
            if stored is None:
                continue
            node = stored.copy()
            self.pending[key] = node
            self.original[key] = stored
            self.changes.node_updates[key] = node

    def observe(self, keys: Iterable[Key], blocked: set[Key], seen: datetime) -> None:
        """Record that ``keys`` were seen at ``seen``; call ``load`` with them first."""
        for key in keys:
            node = self.pending.get(key)
            if node is None:
                node = NodeRecord(key, next(self.node_seq), seen, seen, blocked=key in blocked)
                self.changed.add(key)
                self.pending[key] = node
                self.changes.new_nodes.append(node)
                self.changes.node_updates[key] = node
            node.first_seen = min(node.first_seen, seen)
            node.last_seen = max(node.last_seen, seen)

    def record(self, key: Key) -> NodeRecord | None:
        found = self.pending.get(key) or self._records.get(key)
        if found is None and key not in self.removed and key not in self._absent:
            self._read_records([key])
            found = self._records.get(key)
        return found

    def stored(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        """The stored records among ``keys``, read once per batch."""
        keys = list(keys)
        self._read_records(keys)
        records = self._records
        return {k: records[k] for k in keys if k in records}

    def stored_members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        """The stored members of these customers (one without any is left out), read once."""
        one_ids = set(one_ids)
        wanted = one_ids - self._members.keys() - self._memberless
        if wanted:
            found = self.store.members(sorted(wanted))
            self._members.update(found)
            self._memberless |= wanted - found.keys()
        members = self._members
        return {o: members[o] for o in one_ids if o in members}

    def _read_records(self, keys: Iterable[Key]) -> None:
        wanted = {
            k for k in keys if k not in self.pending and k not in self._records
        } - self._absent
        if wanted:
            found = self.store.nodes(wanted)
            self._records.update(found)
            self._absent |= wanted - found.keys()

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        """Stored neighbours plus this batch's new edges, minus removed nodes.

        Reads the neighbours' records too, in the same breath: the sharing rules
        look at each neighbour next, and one read per level beats one per node.
        """
        keys = list(keys)
        stored = self._stored_neighbours
        # An identifier the store does not hold has no stored edges: not asked for.
        absent = self._absent
        missing = [k for k in dict.fromkeys(keys) if k not in stored and k not in absent]
        if missing:
            fresh, records = self.store.neighbourhood(missing)
            stored.update(fresh)
            self._records.update(records)
        new_edges, removed = self.new_edges, self.removed
        found: dict[Key, set[Key]] = {}
        for key in keys:
            around = stored.get(key, set())
            if key in new_edges:
                around = (around | new_edges[key]) - removed
            elif removed:
                around = around - removed
            found[key] = around
        return found

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        """``store.component`` asked only about seeds the store may hold.

        A seed the store does not hold has no stored edge: it is its own
        component, if it may link at all.
        """
        seeds = set(seeds)
        unstored = seeds & self._absent
        asked = seeds - unstored
        nodes, edges = self.store.component(asked, linkable) if asked else (set(), set())
        return nodes | {k for k in unstored if k in linkable}, edges

    def strong(self, key: Key) -> bool:
        node = self.record(key)
        return self.registry.is_strong(key) and not (node is not None and node.blocked)

    def add_edges(self, pairs: set[Pair]) -> None:
        """Keep each node's count of distinct strong neighbours, the degree rule's input."""
        # A pair with an identifier the store does not hold cannot be a stored edge.
        absent = self._absent
        asked = {p for p in pairs if p[0] not in absent and p[1] not in absent}
        new = pairs - self.store.existing_pairs(asked) if asked else set(pairs)
        for a, b in new:
            self.changed.update((a, b))
            self.new_edges.setdefault(a, set()).add(b)
            self.new_edges.setdefault(b, set()).add(a)
            if self.strong(b):
                self.pending[a].strong_neighbours += 1
            if self.strong(a):
                self.pending[b].strong_neighbours += 1

    def flipped(self) -> list[Key]:
        """Stored nodes that linked before this batch and link no more, or vice versa."""
        linkable = self.linkable()
        return [k for k, was in self.original.items() if was.linkable != linkable[k]]

    def one_ids(self) -> dict[Key, str | None]:
        """The OneID of every node the batch holds, as its changes leave it."""
        assigned = self.changes.assignments
        return {
            k: assigned.get(k, n.one_id) for k, n in self.pending.items() if k not in self.removed
        }

    def linkable(self) -> dict[Key, bool]:
        flags = {k: n.linkable for k, n in self.pending.items()}
        flags.update({k: False for k in self.removed})
        return flags
