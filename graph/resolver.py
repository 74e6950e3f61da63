"""The resolver: turns events and removals into one ChangeSet per batch and applies it.

Each batch reads the closed region around what it touched, recomputes the
partition there with ``resolution.partition``, renames with ``oneids.rename``
and writes everything (evidence, events, OneIDs, history) in one store
transaction. A region is closed: nodes outside it cannot change the customers
inside it, so recomputing only the region gives the same answer as a rebuild.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from graph.errors import BatchTooLarge, IdgraphError, NotFound
from graph.events import CleanEvent, EventInput, clean_event
from graph.identifiers import IdentifierRegistry
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
from graph.oneids import Renaming, rename
from graph.resolution import Partition, partition
from graph.sharing import (
    AnchorGroups,
    capacities,
    has_group_rule,
    is_hub,
    is_strong,
    joins_too_many,
)
from graph.store.protocol import GraphStore

_EVIDENCE_LIMIT = 20


@dataclass
class EventResult:
    index: int
    event_id: str | None
    status: str  # ACCEPTED | DUPLICATE | REJECTED
    one_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None


def key_text(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


class _Batch:
    """The pending state of one write: touched nodes, new edges and the change set."""

    def __init__(self, store: GraphStore, registry: IdentifierRegistry, now: datetime) -> None:
        self.store = store
        self.registry = registry
        self.now = now
        self.changes = ChangeSet()
        self.pending: dict[Key, NodeRecord] = {}
        self.was_linkable: dict[Key, bool] = {}
        self.removed: set[Key] = set()
        self.was_anchor0: dict[Key, bool] = {}
        self.new_edges: dict[Key, set[Key]] = {}
        self._records: dict[Key, NodeRecord] = {}
        self.capacity = capacities(registry)
        self.strong_types = {name for name, kind in registry.types.items() if kind.strong}
        self.hub_thresholds = {
            name: kind.hub_threshold
            for name, kind in registry.types.items()
            if kind.hub_threshold is not None
        }
        node_seq, customer_seq, event_seq = store.counters()
        self.node_seq = itertools.count(node_seq + 1)
        self.customer_seq = itertools.count(customer_seq + 1)
        self.event_seq = itertools.count(event_seq + 1)

    def load(self, keys: Iterable[Key]) -> None:
        """Bring stored nodes into the batch, so changes to them are written back."""
        wanted = [k for k in keys if k not in self.pending]
        for key, stored in self.store.nodes(wanted).items():
            node = stored.copy()
            self.pending[key] = node
            self.was_linkable[key] = node.linkable
            self.was_anchor0[key] = self.anchor0(key)
            self.changes.node_updates[key] = node

    def observe(self, keys: Iterable[Key], blocked: set[Key], seen: datetime) -> None:
        self.load(keys)
        for key in keys:
            node = self.pending.get(key)
            if node is None:
                node = NodeRecord(key, next(self.node_seq), seen, seen, blocked=key in blocked)
                self.pending[key] = node
                self.changes.new_nodes.append(node)
                self.changes.node_updates[key] = node
            node.first_seen = min(node.first_seen, seen)
            node.last_seen = max(node.last_seen, seen)

    def record(self, key: Key) -> NodeRecord | None:
        found = self.pending.get(key) or self._records.get(key)
        if found is None and key not in self.removed:
            found = self.store.nodes([key]).get(key)
            if found is not None:
                self._records[key] = found
        return found

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        """Stored neighbours plus this batch's new edges, minus removed nodes."""
        keys = list(keys)
        found = self.store.neighbours(keys)
        for key in keys:
            found[key] = (found[key] | self.new_edges.get(key, set())) - self.removed
        return found

    def strong(self, key: Key) -> bool:
        node = self.record(key)
        return is_strong(self.registry, key) and not (node is not None and node.blocked)

    def add_edges(self, pairs: set[Pair]) -> None:
        """Keep each node's count of distinct strong neighbours, the degree rule's input."""
        new = pairs - self.store.existing_pairs(pairs)
        for a, b in new:
            self.new_edges.setdefault(a, set()).add(b)
            self.new_edges.setdefault(b, set()).add(a)
            if self.strong(b):
                self.pending[a].strong_neighbours += 1
            if self.strong(a):
                self.pending[b].strong_neighbours += 1

    def anchor0(self, key: Key) -> bool:
        """Strong, not blocked, not a hub: may form anchor groups."""
        if key[0] not in self.strong_types or key in self.removed:
            return False
        node = self.record(key)
        if node is None or node.blocked:
            return False
        hub = self.hub_thresholds.get(key[0])
        return hub is None or node.strong_neighbours <= hub

    def _anchor0_except(self, excluded: Key) -> Callable[[Key], bool]:
        return lambda key: key != excluded and self.anchor0(key)

    def anchor(self, key: Key) -> bool:
        """An anchor: a strong identifier that passed every sharing rule."""
        node = self.record(key)
        return node is not None and not node.shared and self.anchor0(key)

    def _judge(self, key: Key, groups: int | None) -> None:
        """Set a node's shared flag, taking it into the batch only if the flag changes."""
        node = self.record(key)
        if node is None:
            return
        shared = not node.blocked and (
            is_hub(self.registry, key, node.strong_neighbours)
            or (groups is not None and joins_too_many(self.registry, key, groups))
        )
        if shared != node.shared:
            self.load([key])
            self.pending[key].shared = shared

    def refresh_flags(self) -> None:
        """Re-judge every identifier whose shared status this batch may have changed.

        See ``graph.sharing``: first the strong identifiers in every anchor group
        the batch touched, then the other identifiers next to those groups.
        """
        registry = self.registry
        live = [k for k in self.pending if k not in self.removed]
        left = [k for k in self.pending if self.was_anchor0.get(k) and not self.anchor0(k)]
        seeds = {k for k in live if is_strong(registry, k)}
        for others in self.neighbours(left).values():
            seeds |= {o for o in others if is_strong(registry, o)}
        level0 = AnchorGroups(self.neighbours, self.anchor0)
        level0.label(seeds)
        touched = {level0.group[k] for k in seeds if k in level0.group}
        members = [k for k, g in level0.group.items() if g in touched]
        strong = (set(members) | seeds) - self.removed
        around = self.neighbours(strong)
        for key in strong:
            groups = None
            if has_group_rule(registry, key):
                groups = AnchorGroups(self.neighbours, self._anchor0_except(key)).customers(
                    around[key], self.capacity
                )
            self._judge(key, groups)
        weak = {k for k in live if not is_strong(registry, k)}
        for others in self.neighbours(members).values():
            weak |= {o for o in others if not is_strong(registry, o)}
        weak -= self.removed
        around = self.neighbours(weak)
        level1 = AnchorGroups(self.neighbours, self.anchor)
        for key in weak:
            groups = (
                level1.customers(around[key], self.capacity)
                if has_group_rule(registry, key)
                else None
            )
            self._judge(key, groups)

    def linkable(self) -> dict[Key, bool]:
        flags = {k: n.linkable for k, n in self.pending.items()}
        flags.update({k: False for k in self.removed})
        return flags


class Resolver:
    """The single writer of a store: every change to the graph goes through here."""

    def __init__(self, store: GraphStore, registry: IdentifierRegistry) -> None:
        self.store = store
        self.registry = registry
        self._write = threading.Lock()

    # --- ingest ---------------------------------------------------------------------
    def ingest(
        self, events: list[EventInput], now: datetime | None = None, bulk: bool = False
    ) -> list[EventResult]:
        """Apply a batch: its evidence and the customers it changes, in one transaction.

        ``bulk`` (the import command) lifts the API's batch-size cap and defers
        resolution: the evidence is written with its nodes marked dirty, and
        ``resolve_pending`` resolves them all in one pass at the end. The result
        is the same partition (it is a function of the evidence); the work is
        done once per region instead of once per batch. A crash in between
        leaves dirty nodes that the next start resolves.
        """
        limit = self.registry.config.ingest.max_batch_size
        if not bulk and len(events) > limit:
            raise BatchTooLarge(
                f"a batch may hold at most {limit} events; got {len(events)}",
                limit=limit,
                size=len(events),
            )
        now = now or datetime.now(UTC)
        results: list[EventResult] = []
        clean: list[CleanEvent] = []
        for index, event in enumerate(events):
            try:
                c = clean_event(index, event, self.registry, now)
            except IdgraphError as exc:
                results.append(
                    EventResult(
                        index,
                        event.event_id,
                        "REJECTED",
                        error_code=exc.code,
                        error_message=exc.message,
                    )
                )
                continue
            clean.append(c)
            results.append(EventResult(index, c.event_id, "ACCEPTED", warnings=c.warnings))
        with self._write:
            known = self.store.known_events(c.event_id for c in clean)
            fresh: list[CleanEvent] = []
            in_batch: set[str] = set()
            for c in clean:
                if c.event_id in known or c.event_id in in_batch:
                    results[c.index].status = "DUPLICATE"
                else:
                    in_batch.add(c.event_id)
                    fresh.append(c)
            batch = _Batch(self.store, self.registry, now)
            if fresh:
                self._stage_events(batch, fresh)
                if bulk:
                    batch.changes.dirty = set(batch.pending)
                else:
                    batch.refresh_flags()
                    self._resolve(batch, reason="ingest", event_ids=[c.event_id for c in fresh])
                self.store.apply(batch.changes)
            if bulk:
                return results
            for c in clean:
                results[c.index].one_id = self._one_id_of(c.keys, batch)
                if results[c.index].one_id is None:
                    results[c.index].warnings.append(
                        "no identifier of this event links to a customer (blocked or shared)"
                    )
        return results

    def _one_id_of(self, keys: list[Key], batch: _Batch) -> str | None:
        stored = self.store.nodes(keys)
        for key in keys:
            if key in batch.changes.assignments:
                one_id = batch.changes.assignments[key]
            else:
                node = stored.get(key)
                one_id = node.one_id if node is not None else None
            if one_id is not None:
                return one_id
        return None

    def _stage_events(self, batch: _Batch, events: list[CleanEvent]) -> None:
        observed: dict[tuple[Pair, str], EdgeObservation] = {}
        for c in events:
            batch.observe(c.keys, c.blocked, c.timestamp)
            batch.changes.events.append(
                StoredEvent(
                    next(batch.event_seq),
                    c.event_id,
                    c.source,
                    c.timestamp,
                    batch.now,
                    c.keys,
                    c.traits,
                )
            )
            for a, b in itertools.combinations(c.keys, 2):
                p = pair(a, b)
                seen = observed.get((p, c.source))
                if seen is None:
                    observed[(p, c.source)] = EdgeObservation(
                        p[0], p[1], c.source, c.timestamp, c.timestamp
                    )
                else:
                    seen.first_seen = min(seen.first_seen, c.timestamp)
                    seen.last_seen = max(seen.last_seen, c.timestamp)
                    seen.count += 1
        batch.changes.observations = list(observed.values())
        batch.add_edges({p for p, _ in observed})

    def resolve_pending(self, now: datetime | None = None) -> int:
        """Resolve every node left dirty by bulk ingest; returns how many there were."""
        now = now or datetime.now(UTC)
        with self._write:
            dirty = self.store.dirty_keys()
            if not dirty:
                return 0
            batch = _Batch(self.store, self.registry, now)
            batch.load(dirty)
            batch.refresh_flags()
            self._resolve(batch, reason="import", event_ids=[])
            batch.changes.resolved = set(dirty)
            self.store.apply(batch.changes)
            return len(dirty)

    # --- removal --------------------------------------------------------------------
    def remove(self, key: Key, now: datetime | None = None) -> list[str]:
        """Delete an identifier and its evidence; returns the OneIDs its neighbours now have."""
        now = now or datetime.now(UTC)
        with self._write:
            batch = _Batch(self.store, self.registry, now)
            found = self.store.nodes([key]).get(key)
            if found is None:
                raise NotFound(f"identifier {key_text(key)} is not in the graph")
            neighbours = self.store.neighbours([key])[key]
            batch.load([key, *neighbours])
            strong = batch.strong(key)
            batch.removed.add(key)
            batch.changes.removed_nodes.append(key)
            del batch.changes.node_updates[key]
            if strong:
                for other in neighbours:
                    batch.pending[other].strong_neighbours -= 1
            batch.refresh_flags()
            self._resolve(batch, reason="remove", event_ids=[], removed_note=key)
            self.store.apply(batch.changes)
            after = self.store.nodes(neighbours).values()
            return sorted({n.one_id for n in after if n.one_id is not None})

    # --- rebuild --------------------------------------------------------------------
    def rebuild(self, now: datetime | None = None) -> None:
        """Recompute flags and customers for the whole graph, e.g. after a config change."""
        now = now or datetime.now(UTC)
        with self._write:
            batch = _Batch(self.store, self.registry, now)
            keys = list(self.store.all_keys())
            batch.load(keys)
            adjacency = self.store.neighbours(keys)
            for key, node in batch.pending.items():
                node.blocked = self.registry.is_blocked(key)
            for key, node in batch.pending.items():
                node.strong_neighbours = sum(1 for o in adjacency[key] if batch.strong(o))
            batch.refresh_flags()
            self._resolve(batch, reason="rebuild", event_ids=[])
            batch.changes.resolved = set(self.store.dirty_keys())
            self.store.apply(batch.changes)

    # --- the shared core ------------------------------------------------------------
    def _region(self, batch: _Batch) -> tuple[set[Key], set[Pair], dict[Key, NodeRecord]]:
        """The closed region around what the batch touched, and its node records."""
        linkable = batch.linkable()
        seeds = set(batch.pending)
        flipped = [k for k, was in batch.was_linkable.items() if was != linkable.get(k)]
        for neighbours in self.store.neighbours(flipped).values():
            seeds |= neighbours
        region: set[Key] = set()
        edges: set[Pair] = set()
        records: dict[Key, NodeRecord] = {}
        frontier = seeds
        while frontier:
            nodes, found = self.store.component(frontier, linkable)
            region |= nodes
            edges |= found
            missing = [k for k in nodes if k not in records and k not in batch.pending]
            records.update(self.store.nodes(missing))
            records.update({k: batch.pending[k] for k in nodes if k in batch.pending})
            old_ids = {r.one_id for k, r in records.items() if k in nodes and r.one_id}
            frontier = set()
            for members in self.store.members(old_ids).values():
                frontier |= members - region
        for o in batch.changes.observations:
            if linkable.get(o.a) and linkable.get(o.b):
                edges.add((o.a, o.b))
        region -= batch.removed
        return region, edges, records

    def _resolve(
        self, batch: _Batch, reason: str, event_ids: list[str], removed_note: Key | None = None
    ) -> None:
        region, edges, records = self._region(batch)
        linkable = batch.linkable()
        nodes = [k for k in region if linkable.get(k, records[k].linkable)]
        result = partition(self.registry, nodes, edges)
        old = {k: records[k].one_id for k in region}
        old_ids = {o for o in old.values() if o is not None}
        if removed_note is not None:
            gone = self.store.nodes([removed_note]).get(removed_note)
            if gone is not None and gone.one_id is not None:
                old_ids.add(gone.one_id)
        customer_seq = {o: c.seq for o, c in self.store.customers(old_ids).items()}
        renaming = rename(
            result.components, old, {k: records[k].seq for k in region}, customer_seq, old_ids
        )
        for key in region:
            new = renaming.assignment.get(key)
            if new != old[key]:
                batch.changes.assignments[key] = new
        for one_id in renaming.minted:
            batch.changes.new_customers.append(
                CustomerRecord(one_id, next(batch.customer_seq), batch.now)
            )
        customers = self.store.customers(old_ids)
        for survivor, absorbed in renaming.merges.items():
            for one_id in absorbed:
                c = customers[one_id]
                batch.changes.customer_updates.append(
                    CustomerRecord(c.one_id, c.seq, c.created_at, merged_into=survivor)
                )
        for one_id in renaming.retired:
            if one_id not in {a for v in renaming.merges.values() for a in v}:
                c = customers[one_id]
                batch.changes.customer_updates.append(
                    CustomerRecord(c.one_id, c.seq, c.created_at, retired=True)
                )
        self._record_history(batch, renaming, result, old, reason, event_ids, removed_note)

    def _record_history(
        self,
        batch: _Batch,
        renaming: Renaming,
        result: Partition,
        old: dict[Key, str | None],
        reason: str,
        event_ids: list[str],
        removed: Key | None,
    ) -> None:
        events_by_key: dict[Key, list[str]] = {}
        for e in batch.changes.events:
            for k in e.keys:
                events_by_key.setdefault(k, []).append(e.event_id)
        keys_of: dict[str, list[Key]] = {}
        for k, o in renaming.assignment.items():
            keys_of.setdefault(o, []).append(k)
        crossing_of: dict[str, list[dict[str, str]]] = {}
        for a, b in result.accepted:
            if old.get(a) != old.get(b):
                crossing_of.setdefault(renaming.assignment[a], []).append(
                    {"a": key_text(a), "b": key_text(b)}
                )
        for survivor, absorbed in renaming.merges.items():
            cause = sorted({e for k in keys_of[survivor] for e in events_by_key.get(k, [])})
            batch.changes.history.append(
                HistoryEntry(
                    "merge",
                    survivor,
                    list(absorbed),
                    batch.now,
                    reason,
                    cause[:_EVIDENCE_LIMIT],
                    crossing_of.get(survivor, [])[:_EVIDENCE_LIMIT],
                )
            )
        members_of: dict[str, list[Key]] = {}
        for k, was_in in old.items():
            if was_in is not None:
                members_of.setdefault(was_in, []).append(k)
        changed_of: dict[str, list[dict[str, str]]] = {}
        for k, was in batch.was_linkable.items():
            one_id = batch.pending[k].one_id
            if was and one_id and (k in batch.removed or not batch.pending[k].linkable):
                change = "removed" if k == removed else "shared"
                changed_of.setdefault(one_id, []).append(
                    {"identifier": key_text(k), "change": change}
                )
                members_of.setdefault(one_id, []).append(k)
        refused_of: dict[str, list[dict[str, str]]] = {}
        for r in result.refused:
            for one_id in {old.get(r.edge[0]), old.get(r.edge[1])} - {None}:
                assert one_id is not None
                refused_of.setdefault(one_id, []).append(
                    {"a": key_text(r.edge[0]), "b": key_text(r.edge[1]), "limit": r.limit_type}
                )
        for one_id in [*renaming.splits, *renaming.retired]:
            evidence = changed_of.get(one_id, []) + refused_of.get(one_id, [])
            cause = sorted(
                {e for k in members_of.get(one_id, []) for e in events_by_key.get(k, [])}
            )
            kind = "split" if one_id in renaming.splits else "retire"
            batch.changes.history.append(
                HistoryEntry(
                    kind,
                    one_id,
                    renaming.splits.get(one_id, []),
                    batch.now,
                    reason,
                    cause[:_EVIDENCE_LIMIT],
                    evidence[:_EVIDENCE_LIMIT],
                )
            )
