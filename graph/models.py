"""The records the resolver and the stores exchange.

Identifier nodes are addressed by their key, ``(type, canonical value)``, never
by a store's internal id, so every store speaks the same language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

Key = tuple[str, str]
Pair = tuple[Key, Key]


def pair(a: Key, b: Key) -> Pair:
    """The canonical, order-free form of an edge."""
    return (a, b) if a <= b else (b, a)


@dataclass(slots=True)
class NodeRecord:
    """One identifier node. ``seq`` is its creation order; ``blocked``/``shared`` stop links."""

    key: Key
    seq: int
    first_seen: datetime
    last_seen: datetime
    blocked: bool = False
    shared: bool = False
    strong_neighbours: int = 0
    one_id: str | None = None

    @property
    def linkable(self) -> bool:
        return not (self.blocked or self.shared)

    def copy(self) -> NodeRecord:
        return NodeRecord(
            self.key,
            self.seq,
            self.first_seen,
            self.last_seen,
            self.blocked,
            self.shared,
            self.strong_neighbours,
            self.one_id,
        )


# Some keys' neighbours, and the records of all those neighbours.
Neighbourhood = tuple[dict[Key, set[Key]], dict[Key, NodeRecord]]


@dataclass(slots=True)
class CustomerRecord:
    one_id: str
    seq: int
    created_at: datetime
    merged_into: str | None = None
    retired: bool = False
    # The sequence number of the identifier this OneID was first issued for (the
    # oldest of its part then): a part holding it takes the OneID back on a split.
    anchor: int | None = None


@dataclass(slots=True)
class EdgeObservation:
    """One source's evidence that two identifiers belong together."""

    a: Key
    b: Key
    source: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1


@dataclass(slots=True)
class StoredEvent:
    seq: int
    event_id: str
    source: str
    timestamp: datetime
    received_at: datetime
    keys: list[Key]
    traits: dict[str, Any] = field(default_factory=dict)
    # Keys the event carried as placeholders, so a deferred event can be replayed.
    blocked: list[Key] = field(default_factory=list)
    name: str | None = None  # what happened, for behavioural events
    properties: dict[str, Any] | None = None


@dataclass(slots=True)
class HistoryEntry:
    """A merge or split of customers, with why it happened and the evidence behind it."""

    kind: str  # "merge" | "split" | "retire" | "restore"
    one_id: str
    others: list[str]
    at: datetime
    reason: str
    event_ids: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CustomerSource:
    """All one customer's profile is built from, as a single read gives it."""

    one_id: str  # the surviving OneID
    nodes: list[NodeRecord]
    events: list[StoredEvent]
    aliases: list[str]
    history: list[HistoryEntry]


@dataclass
class LoadedGraph:
    """A first load's graph as the loader followed it, nodes by position (seq - 1).

    A store that keeps the graph in memory builds its working state from
    these instead of reading back what it has just written.
    """

    key_hashes: npt.NDArray[np.uint64]  # graph.hashing.key_hash of each node's key
    first_seen: npt.NDArray[np.int64]  # microseconds, by position
    last_seen: npt.NDArray[np.int64]
    shared: npt.NDArray[np.bool_]
    strong_neighbours: npt.NDArray[np.int64]
    customer: npt.NDArray[np.int64]  # each node's position in FirstLoad.customers, -1 for none
    edges: npt.NDArray[np.int64]  # node positions, two by two
    event_nodes: npt.NDArray[np.int64]  # for each identifier of each event: its position ...
    event_seqs: npt.NDArray[np.int64]  # ... and the event's seq
    event_hashes: npt.NDArray[np.uint64]  # graph.hashing.text_hash of each event id ...
    hashed_seqs: npt.NDArray[np.int64]  # ... and that event's seq


@dataclass(slots=True)
class FirstLoad:
    """A bulk load into an empty store, resolved whole: every identifier, in columns.

    Identifier ``n`` (from 0) has sequence number ``n + 1``. Sightings are
    ``moment_text``, as the event log keeps them. A store writes it as it
    would the ``ChangeSet`` of ``changes()``; columns spare it the hundreds of
    thousands of records and timestamps it would only turn back into rows.
    """

    keys: list[Key]
    first_seen: list[str]
    last_seen: list[str]
    blocked: list[bool]
    shared: list[bool]
    strong_neighbours: list[int]
    one_ids: list[str | None]
    customers: list[CustomerRecord]
    graph: LoadedGraph | None = None

    def nodes(self) -> list[NodeRecord]:
        moment = datetime.fromisoformat
        return [
            NodeRecord(key, n, moment(first), moment(last), blocked, shared, strong, one_id)
            for n, (key, first, last, blocked, shared, strong, one_id) in enumerate(
                zip(
                    self.keys,
                    self.first_seen,
                    self.last_seen,
                    self.blocked,
                    self.shared,
                    self.strong_neighbours,
                    self.one_ids,
                    strict=True,
                ),
                start=1,
            )
        ]

    def changes(self) -> ChangeSet:
        """The same load as a ``ChangeSet``: it settles the deferred events that brought it."""
        return ChangeSet(
            new_nodes=self.nodes(), new_customers=list(self.customers), settles_deferred=True
        )


@dataclass
class ChangeSet:
    """Everything one ingest or removal writes, applied by a store in one transaction."""

    new_nodes: list[NodeRecord] = field(default_factory=list)
    node_updates: dict[Key, NodeRecord] = field(default_factory=dict)
    removed_nodes: list[Key] = field(default_factory=list)
    # The batch's evidence per pair and source, for the resolver's own use: a
    # store derives evidence from ``events``, so the two can never disagree.
    observations: list[EdgeObservation] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)
    assignments: dict[Key, str | None] = field(default_factory=dict)
    new_customers: list[CustomerRecord] = field(default_factory=list)
    customer_updates: list[CustomerRecord] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    # Bulk import: these events' identifiers are resolved later, all at once ...
    deferred: bool = False
    # ... by the change that sets this, which resolves every deferred identifier.
    settles_deferred: bool = False
    # What the change does to tags (a ``graph.tags.models.TagWrites``), written with it.
    tags: Any = None
