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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from graph.batch import Batch, StoredReads
from graph.errors import BatchTooLarge, IdgraphError, NotFound
from graph.events import CleanEvent, EventInput, clean_event
from graph.history import key_text, record_history
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
from graph.oneids import Dormant, Renaming, rename
from graph.pacing import holding, step_aside
from graph.parts import in_parts
from graph.resolution import partition
from graph.sharing import refresh_shared
from graph.store.protocol import GraphStore
from graph.whole_graph import WholeGraph


@dataclass
class EventResult:
    index: int
    event_id: str | None
    status: str  # ACCEPTED | DUPLICATE | REJECTED
    one_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None


class Resolver:
    """The single writer of a store: every change to the graph goes through here."""

    def __init__(self, store: GraphStore, registry: IdentifierRegistry) -> None:
        self.store = store
        self.registry = registry
        self.writing = threading.Lock()  # one writer at a time, whatever the entry point
        # Told of every merge, split, retirement and restore once it is committed and the
        # store's write lock is let go (accounts re-file their links; see IdentityGraph).
        self.on_history: Callable[[list[HistoryEntry]], None] | None = None
        # Adds to a change, before it is written, what follows from it (its tags):
        # written in the same transaction, so a response and every later read agree.
        # It is given the change and the store as the batch read it.
        self.deriving: Callable[[ChangeSet, StoredReads], None] | None = None
        # Told of every change once it is committed, before the write returns (the
        # audience index follows it; see IdentityGraph).
        self.on_applied: Callable[[ChangeSet], None] | None = None

    def _told(self, history: list[HistoryEntry]) -> None:
        if history and self.on_history is not None:
            self.on_history(history)

    def _apply(self, batch: Batch) -> None:
        if self.deriving is not None:
            self.deriving(batch.changes, batch)
        self._written(batch.changes)

    def _written(self, changes: ChangeSet) -> None:
        self.store.apply(changes)
        if self.on_applied is not None:
            self.on_applied(changes)

    # --- ingest ---------------------------------------------------------------------
    def ingest(
        self, events: list[EventInput], now: datetime | None = None, bulk: bool = False
    ) -> list[EventResult]:
        """Apply a batch: its evidence and the customers it changes, in one transaction.

        ``bulk`` (the import command) lifts the API's batch-size cap and defers
        resolution; see ``ingest_clean``.
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
            step_aside()
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
        self.ingest_clean(clean, results, now, bulk)
        return results

    def ingest_clean(
        self,
        clean: list[CleanEvent],
        results: list[EventResult],
        now: datetime | None = None,
        bulk: bool = False,
    ) -> None:
        """Apply events already validated by ``clean_event``; ``results[c.position]`` is c's.

        Cleaning is a pure function of the event and the config, so the import
        command runs it in worker processes and hands the clean events here.
        With ``bulk`` the evidence is written with its nodes marked dirty, and
        ``resolve_pending`` resolves them all in one pass at the end. The result
        is the same partition (it is a function of the evidence); the work is
        done once per region instead of once per batch. A crash in between
        leaves dirty nodes that the next start resolves.
        """
        now = now or datetime.now(UTC)
        with holding(self.writing), self.store.exclusive():
            fresh = self.unseen(clean, results, set())
            step_aside()
            if bulk:
                if fresh:
                    self._written(self.defer(fresh, now))
                return
            batch = self._ingest_fresh(clean, fresh, results, now)
        self._told(batch.changes.history)

    def _ingest_fresh(
        self,
        clean: list[CleanEvent],
        fresh: list[CleanEvent],
        results: list[EventResult],
        now: datetime,
    ) -> Batch:
        """Write the fresh events and what they change; fill in every result's OneID."""
        batch = Batch(self.store, self.registry, now)
        step_aside()
        if fresh:
            self._stage_events(batch, fresh)
            refresh_shared(batch)
            self._resolve(batch, reason="ingest")
            self._apply(batch)
        # The batch knows the OneIDs of what it touched; only identifiers of events
        # it skipped as duplicates are read, in one read for all of them.
        one_ids = batch.one_ids()
        unknown = {k for c in clean for k in c.keys if k not in one_ids}
        if unknown:
            one_ids.update((k, n.one_id) for k, n in self.store.nodes(unknown).items())
        for c in clean:
            results[c.position].one_id = _one_id_of(c.keys, one_ids)
            if results[c.position].one_id is None:
                results[c.position].warnings.append(
                    "no identifier of this event links to a customer (blocked or shared)"
                )
        return batch

    def _stage_events(self, batch: Batch, events: list[CleanEvent]) -> None:
        observed: dict[tuple[Pair, str], EdgeObservation] = {}
        batch.load({k for c in events for k in c.keys})
        for c in events:
            step_aside()
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
                    name=c.name,
                    properties=c.properties,
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

    def unseen(
        self, clean: list[CleanEvent], results: list[EventResult], seen: set[str]
    ) -> list[CleanEvent]:
        """The events neither stored nor in ``seen``; the others are marked DUPLICATE."""
        repeated = set(self.duplicates([c.event_id for c in clean], seen))
        for position in repeated:
            results[clean[position].position].status = "DUPLICATE"
        return [c for position, c in enumerate(clean) if position not in repeated]

    def duplicates(self, event_ids: list[str], seen: set[str], stored: bool = True) -> list[int]:
        """Positions of the ids already stored (unless ``stored`` is false) or in ``seen``.

        ``seen`` (event ids already taken in this batch or load) grows with the
        others, so a re-sent id counts once.
        """
        known = self.store.known_events(event_ids) if stored else set()
        if not known and seen.isdisjoint(event_ids):
            distinct = set(event_ids)
            if len(distinct) == len(event_ids):  # the common case, checked in C
                seen |= distinct
                return []
        found = []
        for position, event_id in enumerate(event_ids):
            if event_id in known or event_id in seen:
                found.append(position)
            else:
                seen.add(event_id)
        return found

    def defer(self, events: list[CleanEvent], now: datetime) -> ChangeSet:
        """The evidence of a bulk chunk alone: its events, marked for deferred resolution.

        The store derives the identifiers they bring and their sightings from
        the events; ``resolve_pending`` judges and writes them.
        """
        seqs = itertools.count(self.store.last_event_seq() + 1)
        return ChangeSet(
            events=[
                StoredEvent(
                    next(seqs),
                    c.event_id,
                    c.source,
                    c.timestamp,
                    now,
                    c.keys,
                    c.traits,
                    [k for k in c.keys if k in c.blocked],
                    c.name,
                    c.properties,
                )
                for c in events
            ],
            deferred=True,
        )

    def resolve_pending(self, now: datetime | None = None) -> int:
        """Resolve every node left dirty by bulk ingest; returns how many there were."""
        now = now or datetime.now(UTC)
        with holding(self.writing), self.store.exclusive():
            dirty = self.store.dirty_keys()
            if not dirty:
                return 0
            batch = Batch(self.store, self.registry, now)
            batch.load(dirty)
            batch.changed = set(dirty)
            if len(dirty) == self.store.node_count():  # a first import: judge it whole
                self._resolve_whole(batch, reason="import")
            else:
                # Deferred evidence added edges between dirty nodes only, so only their
                # counts of strong neighbours can have moved.
                for key, neighbours in batch.neighbours(dirty).items():
                    batch.pending[key].strong_neighbours = sum(
                        1 for o in neighbours if batch.strong(o)
                    )
                refresh_shared(batch)
                self._resolve(batch, reason="import")
            batch.changes.settles_deferred = True
            self._written(batch.changes)
        self._told(batch.changes.history)
        return len(dirty)

    # --- removal --------------------------------------------------------------------
    def remove(self, key: Key, now: datetime | None = None) -> list[str]:
        """Delete an identifier and its evidence; returns the OneIDs its neighbours now have."""
        now = now or datetime.now(UTC)
        with holding(self.writing), self.store.exclusive():
            batch = Batch(self.store, self.registry, now)
            found = self.store.nodes([key]).get(key)
            if found is None:
                raise NotFound(f"identifier {key_text(key)} is not in the graph")
            neighbours = self.store.neighbours([key])[key]
            batch.load([key, *neighbours])
            batch.changed = {key, *neighbours}
            strong = batch.strong(key)
            batch.removed.add(key)
            batch.changes.removed_nodes.append(key)
            del batch.changes.node_updates[key]
            if strong:
                for other in neighbours:
                    batch.pending[other].strong_neighbours -= 1
            refresh_shared(batch)
            self._resolve(batch, reason="remove", removed=key)
            self._apply(batch)
            after = self.store.nodes(neighbours).values()
        self._told(batch.changes.history)
        return sorted({n.one_id for n in after if n.one_id is not None})

    # --- rebuild --------------------------------------------------------------------
    def rebuild(self, now: datetime | None = None) -> None:
        """Recompute flags and customers for the whole graph, e.g. after a config change.

        A store that caps a transaction (``resolve_every``) takes the result in
        parts of that many identifiers, each whole for the customers it touches
        (``parts.in_parts``); run it while no other process writes.
        """
        now = now or datetime.now(UTC)
        with holding(self.writing):
            with self.store.exclusive():
                batch = Batch(self.store, self.registry, now)
                keys = list(self.store.all_keys())
                batch.load(keys)
                batch.changed = set(keys)
                for key, node in batch.pending.items():
                    node.blocked = self.registry.is_blocked(key)
                self._resolve_whole(batch, reason="rebuild")
                batch.changes.settles_deferred = True
                most = self.store.resolve_every
                parts = [batch.changes] if most is None else in_parts(batch.changes, most)
                self._written(parts[0])
            for part in parts[1:]:
                with self.store.exclusive():
                    self._written(part)
        self._told(batch.changes.history)

    # --- the shared core ------------------------------------------------------------
    def _region(self, batch: Batch) -> tuple[set[Key], set[Pair], dict[Key, NodeRecord]]:
        """The closed region around what the batch touched, and its node records."""
        linkable = batch.linkable()
        flipped = batch.flipped()
        seeds = batch.changed | set(flipped)
        for neighbours in self.store.neighbours(flipped).values():
            seeds |= neighbours
        region: set[Key] = set()
        edges: set[Pair] = set()
        records: dict[Key, NodeRecord] = {}
        frontier = seeds
        while frontier:
            step_aside()
            nodes, found = batch.component(frontier, linkable)
            region |= nodes
            edges |= found
            missing = [k for k in nodes if k not in records and k not in batch.pending]
            records.update(batch.stored(missing))
            records.update({k: batch.pending[k] for k in nodes if k in batch.pending})
            old_ids = {r.one_id for k, r in records.items() if k in nodes and r.one_id}
            frontier = set()
            for members in batch.stored_members(old_ids).values():
                frontier |= members - region
        for o in batch.changes.observations:
            if linkable.get(o.a) and linkable.get(o.b):
                edges.add((o.a, o.b))
        region -= batch.removed
        return region, edges, records

    def resolve_judged(
        self, batch: Batch, edges: set[Pair], plain: list[list[Key]], reason: str
    ) -> None:
        """Resolve a batch that holds every node, already judged, with its linked edges.

        For a loader that follows the whole graph itself: ``batch.pending``
        holds each node with its new flags and the OneID it had; ``plain``
        are the linked components (``WholeGraph.linked_components``).
        """
        self._resolve(batch, reason, whole=(set(batch.pending), edges, batch.pending, plain))

    def _resolve_whole(self, batch: Batch, reason: str) -> None:
        """Resolve a batch that holds every node of the graph, judged in one pass."""
        pending = batch.pending
        adjacency = self.store.neighbours(pending)
        whole = WholeGraph.of(self.registry, {k: n.blocked for k, n in pending.items()}, adjacency)
        counts, shared = whole.judge()
        for key, count, is_shared in zip(whole.keys, counts, shared, strict=True):
            node = pending[key]
            node.strong_neighbours = count
            node.shared = is_shared
        edges = set(whole.linked_edges(shared))
        self.resolve_judged(batch, edges, whole.linked_components(shared), reason)

    def _resolve(
        self,
        batch: Batch,
        reason: str,
        removed: Key | None = None,
        whole: tuple[set[Key], set[Pair], Mapping[Key, NodeRecord], list[list[Key]]] | None = None,
    ) -> None:
        """Re-partition the batch's region.

        ``whole`` is every node, with all its edges, its records and its plain
        linked components, when the batch holds the whole graph.
        """
        plain: list[list[Key]] | None = None
        if whole is not None:
            region, edges, records, plain = whole
        else:
            region, edges, records = self._region(batch)
        linkable = batch.linkable()
        nodes = [k for k in region if linkable.get(k, records[k].linkable)]
        result = partition(self.registry, nodes, edges, plain)
        step_aside()
        old = {k: records[k].one_id for k in region}
        old_ids = {o for o in old.values() if o is not None}
        if removed is not None:
            gone = batch.original[removed]
            if gone.one_id is not None:
                old_ids.add(gone.one_id)
        node_seq = {k: records[k].seq for k in region}
        customers = self.store.customers(old_ids)
        key_at = {seq: k for k, seq in node_seq.items()}
        anchors = {o: key_at[c.anchor] for o, c in customers.items() if c.anchor in key_at}
        customer_seq = {o: c.seq for o, c in customers.items()}
        step_aside()
        renaming = rename(result.components, old, node_seq, customer_seq, old_ids, anchors=anchors)
        step_aside()
        dormant = self._dormant(batch, renaming, node_seq, key_at)
        if dormant:
            for d, record in dormant:
                customers[d.one_id] = record
                customer_seq[d.one_id] = record.seq
            renaming = rename(
                result.components,
                old,
                node_seq,
                customer_seq,
                old_ids,
                anchors=anchors,
                dormant=[d for d, _ in dormant],
            )
        for key in region:
            step_aside()
            new = renaming.assignment.get(key)
            if new != old[key]:
                batch.changes.assignments[key] = new
        for one_id in renaming.minted:
            batch.changes.new_customers.append(
                CustomerRecord(
                    one_id,
                    next(batch.customer_seq),
                    batch.now,
                    anchor=node_seq[renaming.anchors[one_id]],
                )
            )
        updates = batch.changes.customer_updates
        for survivor, absorbed in renaming.merges.items():
            for one_id in absorbed:
                updates.append(_updated(customers[one_id], merged_into=survivor))
        for one_id in renaming.retired:  # no part inherited it, so it was not merged either
            updates.append(_updated(customers[one_id], retired=True))
        for one_id in renaming.restored:  # its own again: no longer an alias, nor retired
            updates.append(_updated(customers[one_id]))
        for alias, name in renaming.repointed.items():
            updates.append(_updated(customers[alias], merged_into=name))
        step_aside()
        record_history(batch, renaming, result, old, reason, removed)

    def _dormant(
        self,
        batch: Batch,
        renaming: Renaming,
        node_seq: Mapping[Key, int],
        key_at: Mapping[int, Key],
    ) -> list[tuple[Dormant, CustomerRecord]]:
        """OneIDs no identifier holds that were issued for identifiers a part may be owed.

        Only a split, a retirement or a part about to get a fresh OneID can
        give one back; and a part made of identifiers new in this batch holds
        no identifier anything was issued for, so the common ingest reads
        nothing more.
        """
        if not renaming.wants_dormant:
            return []
        new = {n.key for n in batch.changes.new_nodes}
        if renaming.splits or renaming.retired:
            wanted = [seq for key, seq in node_seq.items() if key not in new]
        else:
            minted = set(renaming.minted)
            wanted = [
                node_seq[key]
                for key, name in renaming.assignment.items()
                if name in minted and key not in new
            ]
        if not wanted:
            return []
        return [
            (Dormant(c.one_id, c.seq, key_at[anchor], c.merged_into), c)
            for c in self.store.anchored(wanted)
            if (c.merged_into is not None or c.retired)
            and (anchor := c.anchor) is not None
            and anchor in key_at
        ]


def _updated(
    record: CustomerRecord, merged_into: str | None = None, retired: bool = False
) -> CustomerRecord:
    """A customer's record with a new state: an alias of ``merged_into``, retired, or its own."""
    return CustomerRecord(
        record.one_id, record.seq, record.created_at, merged_into, retired, record.anchor
    )


def _one_id_of(keys: list[Key], one_ids: Mapping[Key, str | None]) -> str | None:
    """The event's customer: that of its first identifier that links to one."""
    for key in keys:
        one_id = one_ids.get(key)
        if one_id is not None:
            return one_id
    return None
