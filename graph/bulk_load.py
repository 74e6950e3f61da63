"""A bulk import: events written chunk by chunk, customers resolved once at the end.

Loading into an empty store is the common case (a first import of history)
and the one worth making fast: the loader then follows the graph itself, in
integers, and at the end judges and partitions it in one pass and writes
every identifier and customer in one transaction. It computes what
``Resolver.resolve_pending`` would (the property tests hold them to the same
partition); it only skips reading back what it already holds. Into a store
that holds data, it leaves resolution to the resolver's general path.

Either way each chunk is durable when ``add`` returns, and a load cut short
is finished by the next start, which resolves the deferred events. A store
that caps the size of a transaction (``resolve_every``) has the load resolved
in parts of at most that many events and new identifiers. While the loader
is the only writer it keeps following the whole graph, judges it whole again
at each part and resolves again only what can move a customer; once another
writer has joined, parts are resolved the general way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import numpy as np
import numpy.typing as npt

from graph.batch import Batch
from graph.event_chunk import ChunkBuilder, EventChunk
from graph.events import CleanEvent
from graph.models import CustomerRecord, FirstLoad, Key, LoadedGraph, NodeRecord
from graph.oneids import new_one_ids
from graph.pacing import holding
from graph.resolver import EventResult, Resolver
from graph.whole_graph import Flags, Ints, WholeGraph

Micros = npt.NDArray[np.int64]
_NO_HASHES = np.zeros(0, dtype=np.uint64)
_NO_POSITIONS = np.zeros(0, dtype=np.int64)
_LATEST = np.iinfo(np.int64).max  # no sighting yet: any first sighting is earlier
_EARLIEST = np.iinfo(np.int64).min


def moment_texts(values: Micros) -> list[str]:
    """``event_chunk.moment_text`` of each moment in ``micros``, formatted by numpy at once."""
    texts: list[str] = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").tolist()
    return [text + "+00:00" for text in texts]


class BulkLoad:
    """Feed it chunks with ``add_chunk`` (clean events with ``add``); ``finish`` resolves them."""

    def __init__(self, resolver: Resolver, now: datetime) -> None:
        self.resolver = resolver
        self.store = resolver.store
        self.now = now
        # Sequence numbers are shared with any other writer: all of those since the
        # start being ours means the loader's view of the graph is the whole graph.
        self._first_event = self.store.last_event_seq()
        self.empty = self._first_event == 0 and self.store.node_count() == 0
        self._seen: set[str] = set()
        self._written = 0
        self._unresolved = 0  # events written since the last resolution
        self._brought = 0  # identifiers those events brought, while following the graph
        # The graph so far, by position of first sighting (sequence number - 1).
        self._ids: dict[Key, int] = {}
        self._keys: list[Key] = []
        # First and last sightings in micros, by position; spare room at the end.
        self._first: Micros = np.zeros(0, dtype=np.int64)
        self._last: Micros = np.zeros(0, dtype=np.int64)
        self._blocked: list[bool] = []
        self._edges: list[npt.NDArray[np.int64]] = []  # each chunk's edges, positions two by two
        # For a store that keeps the graph in memory (LoadedGraph), chunk by chunk:
        self._key_hashes: list[npt.NDArray[np.uint64]] = []  # of the nodes each chunk brought
        self._event_nodes: list[npt.NDArray[np.int64]] = []
        self._event_seqs: list[npt.NDArray[np.int64]] = []
        self._event_hashes: list[npt.NDArray[np.uint64]] = []
        self._hashed_seqs: list[npt.NDArray[np.int64]] = []
        # The nodes as the last part wrote them, once a first part is written; and how
        # many of the chunks' edge arrays that part saw.
        self._as_written: _Written | None = None
        self._edges_written = 0
        self._edge_codes = np.zeros(0, dtype=np.int64)  # (a << 32) | b, a < b, sorted

    def add(self, events: list[CleanEvent], results: list[EventResult]) -> None:
        """Write a chunk durably; ``results[c.position]`` is the result of event ``c``."""
        builder = ChunkBuilder()
        for c in events:
            builder.add(
                c.event_id, c.source, c.timestamp, c.keys, c.blocked, c.traits, c.name, c.properties
            )
        for position in self.add_chunk(builder.chunk):
            results[events[position].position].status = "DUPLICATE"

    def add_chunk(self, chunk: EventChunk) -> list[int]:
        """Write a chunk durably; returns the positions of the events already stored or seen.

        A store that caps a transaction gets parts of at most ``resolve_every``
        events and, while the loader follows the graph, at most as many new
        identifiers: what a part's transaction holds grows with the identifiers
        it creates (customers, relationships, indexes), and a chunk of events
        that each bring new ones would otherwise overshoot it.
        """
        duplicates: list[int] = []
        done = 0
        while True:
            size = self._fitting(chunk)
            whole = size == len(chunk)
            head = chunk if whole else chunk.only(range(size))
            duplicates += [done + p for p in self._add_part(head)]
            if whole:
                return duplicates
            if self._unresolved:  # the part is full: the rest of the chunk starts the next
                self.finish()
            chunk, done = chunk.only(range(size, len(chunk))), done + size

    def _fitting(self, chunk: EventChunk) -> int:
        """How many of the chunk's first events fit in the part being filled.

        At least one, so a load always moves on. Chunk nodes are numbered in
        order of first sighting, so the nodes events ``0..i`` have reached are
        those up to the highest number among them.
        """
        limit = self.store.resolve_every
        if limit is None or not self.empty:
            return len(chunk)
        events = max(1, min(len(chunk), limit - self._unresolved))
        ids = self._ids
        brought = np.cumsum([node not in ids for node in chunk.nodes], dtype=np.int64)
        room = limit - self._brought
        if not len(brought) or brought[-1] <= room:
            return events
        sizes = np.frombuffer(chunk.event_sizes, dtype=np.intc)
        starts = np.cumsum(sizes) - sizes
        reached = np.full(len(sizes), -1, dtype=np.int64)
        some = sizes > 0
        nodes = np.frombuffer(chunk.event_nodes, dtype=np.intc)
        reached[some] = np.maximum.reduceat(nodes, starts[some])
        reached = np.maximum.accumulate(reached)
        new_by_event = np.where(reached >= 0, brought[np.maximum(reached, 0)], 0)
        fits = int(np.searchsorted(new_by_event, room, side="right"))
        return max(1, min(events, fits))

    def _add_part(self, chunk: EventChunk) -> list[int]:
        with holding(self.resolver.writing), self.store.exclusive():
            last = self.store.last_event_seq()
            # Into a store that was empty, with no other writer since: every stored
            # event is one of ours, already in ``_seen``, so the store need not be asked.
            ours = self.empty and last == self._first_event + self._written
            duplicates = self.resolver.duplicates(chunk.event_ids, self._seen, stored=not ours)
            if duplicates:
                skip = set(duplicates)
                chunk = chunk.only(p for p in range(len(chunk)) if p not in skip)
            if not chunk:
                return duplicates
            self.store.append_deferred(chunk, last + 1, self.now)
            self._written += len(chunk)
            self._unresolved += len(chunk)
            if self.empty:
                self._follow(chunk, last + 1)
        limit = self.store.resolve_every
        if limit is not None and max(self._unresolved, self._brought) >= limit:
            self.finish()
        return duplicates

    def _forget(self) -> None:
        """The graph is in the store now: later parts are resolved the general way."""
        self.empty = False
        self._ids, self._keys, self._edges, self._blocked = {}, [], [], []
        self._key_hashes, self._event_nodes, self._event_seqs = [], [], []
        self._event_hashes, self._hashed_seqs = [], []
        self._first, self._last = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self._as_written = None

    def _follow(self, chunk: EventChunk, first_seq: int) -> None:
        """Take in a chunk's nodes, sightings, edges: new nodes one by one, the rest as arrays.

        The chunk's events are numbered from ``first_seq``.
        """
        seqs = np.arange(first_seq, first_seq + len(chunk), dtype=np.int64)
        self._event_hashes.append(np.frombuffer(chunk.event_hashes, dtype=np.uint64).copy())
        self._hashed_seqs.append(seqs)
        if not chunk.nodes:
            return
        ids, keys, nodes = self._ids, self._keys, chunk.nodes
        number = list(map(ids.get, nodes))  # the chunk's node number -> the loader's, None if new
        new = [p for p, n in enumerate(number) if n is None]
        for n, p in enumerate(new, start=len(keys)):
            ids[nodes[p]] = number[p] = n
        keys.extend(map(nodes.__getitem__, new))
        self._brought += len(new)
        self._blocked.extend(map(chunk.node_blocked.__getitem__, new))
        if len(keys) > len(self._first):  # room for twice as many, as a list grows
            room = 2 * len(keys) - len(self._first)
            self._first = np.append(self._first, np.full(room, _LATEST, dtype=np.int64))
            self._last = np.append(self._last, np.full(room, _EARLIEST, dtype=np.int64))
        at = np.array(number, dtype=np.int64)  # distinct: a chunk lists each node once
        self._key_hashes.append(np.frombuffer(chunk.node_hashes, dtype=np.uint64)[new])
        sizes = np.frombuffer(chunk.event_sizes, dtype=np.intc)
        self._event_nodes.append(at[np.frombuffer(chunk.event_nodes, dtype=np.intc)])
        self._event_seqs.append(np.repeat(seqs, sizes))
        first = np.frombuffer(chunk.first_seen, dtype=np.int64)
        last = np.frombuffer(chunk.last_seen, dtype=np.int64)
        self._first[at] = np.minimum(self._first[at], first)
        self._last[at] = np.maximum(self._last[at], last)
        if chunk.edges:
            ends = np.frombuffer(chunk.edges, dtype=np.intc)
            self._edges.append(at[ends])

    def finish(self) -> int:
        """Resolve what the chunks brought; returns how many identifiers that was."""
        brought, self._unresolved, self._brought = self._unresolved, 0, 0
        if self.empty and self._as_written is not None and not brought:
            return 0  # the last part was resolved as it was written
        if self.empty:
            with holding(self.resolver.writing), self.store.exclusive():
                # Another writer (a store several processes share) may have added
                # evidence since: then only the general path knows the whole graph.
                if self.store.last_event_seq() == self._first_event + self._written:
                    if self._as_written is not None:
                        return self._finish_part()
                    return self._finish_alone()
            self._forget()
        return self.resolver.resolve_pending(self.now)

    def _judged(self) -> tuple[WholeGraph, list[bool], Ints, Flags]:
        """The whole graph judged: its shared flags in key order, and each node's count
        of strong neighbours and shared flag by the loader's position."""
        edges = np.concatenate(self._edges) if self._edges else np.zeros(0, dtype=np.int64)
        whole = WholeGraph(self.resolver.registry, self._keys, self._blocked, edges)
        counts, shared = whole.judge()
        node_of = whole.rank  # loader's position -> key-order position
        counts_at = np.array(counts, dtype=np.int64)[node_of]
        shared_at: Flags = np.array(shared, dtype=np.bool_)[node_of]
        return whole, shared, counts_at, shared_at

    def _finish_alone(self) -> int:
        if not self._keys:
            return 0
        whole, shared, counts_at, shared_at = self._judged()
        size = len(self._keys)
        load = FirstLoad(
            self._keys,
            moment_texts(self._first[:size]),
            moment_texts(self._last[:size]),
            self._blocked,
            shared_at.tolist(),
            counts_at.tolist(),
            [None] * size,
            [],
        )
        customers = whole.customers(shared)
        one_ids = new_one_ids(len(customers))
        names: list[str | None] = [*one_ids, None]
        # Each node's customer (by the loader's position); -1, past the last name, for none.
        customer_of = np.full(len(self._keys), -1, dtype=np.int64)
        sizes = list(map(len, customers))
        members = np.fromiter(chain.from_iterable(customers), dtype=np.int64, count=sum(sizes))
        positions = whole.order[members]
        customer_of[positions] = np.repeat(np.arange(len(customers)), sizes)
        # Each OneID is issued for its customer's oldest identifier (position + 1 is its seq).
        starts = np.cumsum([0, *sizes[:-1]]) if sizes else np.zeros(0, dtype=np.int64)
        anchors = (np.minimum.reduceat(positions, starts) + 1).tolist() if sizes else []
        load.customers = [
            CustomerRecord(one_id, seq, self.now, anchor=anchor)
            for seq, (one_id, anchor) in enumerate(zip(one_ids, anchors, strict=True), start=1)
        ]
        load.one_ids = list(map(names.__getitem__, customer_of.tolist()))
        load.graph = self._loaded_graph(load, customer_of)
        self.store.apply_first_load(load)
        if self.store.resolve_every is not None:  # more parts may follow
            self._as_written = _Written(
                self._first[:size].copy(),
                self._last[:size].copy(),
                shared_at,
                counts_at,
                customer_of,
                list(one_ids),
            )
            self._new_edge_ends()  # every edge so far is written
        return len(self._keys)

    def _loaded_graph(self, load: FirstLoad, customer_of: npt.NDArray[np.int64]) -> LoadedGraph:
        size = len(self._keys)
        return LoadedGraph(
            np.concatenate(self._key_hashes) if self._key_hashes else _NO_HASHES,
            self._first[:size],
            self._last[:size],
            np.array(load.shared, dtype=np.bool_),
            np.array(load.strong_neighbours, dtype=np.int64),
            customer_of,
            np.concatenate(self._edges) if self._edges else _NO_POSITIONS,
            np.concatenate(self._event_nodes) if self._event_nodes else _NO_POSITIONS,
            np.concatenate(self._event_seqs) if self._event_seqs else _NO_POSITIONS,
            np.concatenate(self._event_hashes) if self._event_hashes else _NO_HASHES,
            np.concatenate(self._hashed_seqs) if self._hashed_seqs else _NO_POSITIONS,
        )

    def _new_edge_ends(self) -> Ints:
        """The ends of edges no part has written yet (chunks repeat known pairs)."""
        fresh = self._edges[self._edges_written :]
        self._edges_written = len(self._edges)
        if not fresh:
            return _NO_POSITIONS
        pairs = np.concatenate(fresh).reshape(-1, 2)
        pairs.sort(axis=1)
        codes = np.unique((pairs[:, 0] << 32) | pairs[:, 1])
        new = codes[~np.isin(codes, self._edge_codes, assume_unique=True)]
        self._edge_codes = np.union1d(self._edge_codes, new)
        return np.concatenate([new >> 32, new & 0xFFFFFFFF])

    def _finish_part(self) -> int:
        """A later part: judge the whole graph again and resolve what it changed.

        The loader has been the only writer, so it knows every node as it was
        written. What a part can move is its region: the nodes it brought or
        whose flags or edges changed, widened to whole linked components and
        whole customers as they were (``_Written.region``); nodes only seen
        again get their sightings written and are not resolved.
        The resolver reconciles those customers (OneIDs kept, merges and
        splits recorded) as for any batch that holds all of them, so a part
        costs what it touches plus a pass of array operations over the graph.
        """
        whole, shared, counts_at, shared_at = self._judged()
        written = self._as_written
        assert written is not None
        size, before = len(self._keys), written.size
        first, last = self._first[:size], self._last[:size]
        # Sightings are written but do not move customers; new nodes, flags and
        # edges can, so only they start the region resolved again.
        seen = np.zeros(size, dtype=np.bool_)
        seen[:before] = (first[:before] != written.first) | (last[:before] != written.last)
        linked = np.ones(size, dtype=np.bool_)
        linked[:before] = (shared_at[:before] != written.shared) | (
            counts_at[:before] != written.strong
        )
        linked[self._new_edge_ends()] = True
        region = written.region(linked, whole.linked_labels(shared)[whole.rank])
        positions = np.flatnonzero(region | seen)
        keys, blocked = self._keys, self._blocked
        moment = datetime.fromisoformat
        nodes = [
            NodeRecord(keys[p], p + 1, moment(f), moment(la), blocked[p], sh, strong)
            for p, f, la, sh, strong in zip(
                positions.tolist(),
                moment_texts(first[positions]),
                moment_texts(last[positions]),
                shared_at[positions].tolist(),
                counts_at[positions].tolist(),
                strict=True,
            )
        ]
        old = positions[positions < before]
        was = dict(zip(old.tolist(), written.records(old, keys, blocked), strict=True))
        batch = Batch(self.store, self.resolver.registry, self.now)
        resolved = region[positions].tolist()
        for node, again in zip(nodes, resolved, strict=True):
            previous = was.get(node.seq - 1)
            if previous is None:
                batch.pending[node.key] = node
                batch.changes.new_nodes.append(node)
                continue
            node.one_id = previous.one_id
            if again:
                batch.pending[node.key] = node
                batch.original[node.key] = previous
            if (
                node.first_seen != previous.first_seen
                or node.last_seen != previous.last_seen
                or node.shared != previous.shared
                or node.strong_neighbours != previous.strong_neighbours
            ):
                batch.changes.node_updates[node.key] = node
        within = region[whole.order]  # by key order
        edges = set(whole.linked_edges(shared, within))
        plain = whole.linked_components(shared, within)
        self.resolver.resolve_judged(batch, edges, plain, "import")
        batch.changes.settles_deferred = True
        self.store.apply(batch.changes)
        assignments = batch.changes.assignments
        written.update(
            first,
            last,
            shared_at,
            counts_at,
            {n.seq - 1: assignments.get(n.key, n.one_id) for n in nodes if n.key in batch.pending},
        )
        return len(self._keys)


@dataclass
class _Written:
    """Each node as the last part wrote it, by the loader's position; later ones are new."""

    first: Micros
    last: Micros
    shared: Flags
    strong: Ints
    customer: Ints  # index in ``names``, -1 for none
    names: list[str]

    def __post_init__(self) -> None:
        self.index = {name: n for n, name in enumerate(self.names)}

    @property
    def size(self) -> int:
        return len(self.first)

    def changed(self, first: Micros, last: Micros, shared: Flags, strong: Ints) -> Flags:
        """Which written nodes the judged graph holds otherwise."""
        n = self.size
        moved: Flags = (
            (first[:n] != self.first)
            | (last[:n] != self.last)
            | (shared[:n] != self.shared)
            | (strong[:n] != self.strong)
        )
        return moved

    def region(self, changed: Flags, label: Ints) -> Flags:
        """``changed`` widened until it holds whole linked components and whole customers.

        ``label`` is each node's linked component (-1 for a node that links
        none). A changed node can join or split its component, and the
        customers it had span components it may leave: every member of both
        is resolved again, and so on until nothing more is reached.
        """
        customer = np.full(len(label), -1, dtype=np.int64)
        customer[: self.size] = self.customer
        region = changed.copy()
        reached = int(region.sum())
        while True:
            components = np.unique(label[region])
            owners = np.unique(customer[region])
            region |= np.isin(label, components[components >= 0])
            region |= np.isin(customer, owners[owners >= 0])
            grown = int(region.sum())
            if grown == reached:
                return region
            reached = grown

    def records(self, positions: Ints, keys: list[Key], blocked: list[bool]) -> list[NodeRecord]:
        """The records of the written nodes at ``positions`` as they were written."""
        names = self.names
        return [
            NodeRecord(
                keys[p],
                p + 1,
                datetime.fromisoformat(f),
                datetime.fromisoformat(la),
                blocked[p],
                sh,
                strong,
                names[owner] if owner >= 0 else None,
            )
            for p, f, la, sh, strong, owner in zip(
                positions.tolist(),
                moment_texts(self.first[positions]),
                moment_texts(self.last[positions]),
                self.shared[positions].tolist(),
                self.strong[positions].tolist(),
                self.customer[positions].tolist(),
                strict=True,
            )
        ]

    def update(
        self,
        first: Micros,
        last: Micros,
        shared: Flags,
        strong: Ints,
        one_ids: dict[int, str | None],
    ) -> None:
        """Take the nodes as a part wrote them: ``one_ids`` by position for those it resolved."""
        customer = np.full(len(first), -1, dtype=np.int64)
        customer[: self.size] = self.customer
        names, index = self.names, self.index
        for position, one_id in one_ids.items():
            if one_id is None:
                customer[position] = -1
                continue
            if one_id not in index:
                index[one_id] = len(names)
                names.append(one_id)
            customer[position] = index[one_id]
        self.first, self.last = first.copy(), last.copy()
        self.shared, self.strong, self.customer = shared, strong, customer
