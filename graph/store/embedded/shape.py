"""The graph's shape as the embedded store serves it: an immutable value, read with no lock.

A ``Shape`` is a compact ``Base`` (numpy arrays indexed by identifier and
customer number, written to and read from a snapshot file as they are) with
a small ``Overlay`` of what changed since the base was built (dicts of
whole replacement values). A write makes a new Shape with a new overlay and
publishes it once its transaction has committed; a reader takes the
published Shape once and reads only it, so it sees one commit's state whole,
never half of one, and never waits for a writer. When the overlay grows the
writer folds it into a new base (``changes.compact``).

Identifiers are numbered by their sequence number (``seq``), customers by
their row in the base. Everything here answers in those numbers; the store
turns them into keys and records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from graph.hashing import text_hash
from graph.models import CustomerRecord, Key, NodeRecord
from graph.store.embedded.keys import NO_TYPE, KeyIndex

Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NONE = -1  # no customer, no anchor, not merged


def moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def micros_of(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Base:
    """Every identifier and customer as of one build, in arrays."""

    keys: KeyIndex
    first: Ints  # by seq, microseconds since 1970 UTC
    last: Ints
    blocked: Flags
    shared: Flags
    strong: Int32s
    cust: Int32s  # the customer row of each identifier, NONE for none
    adj_ptr: Ints  # neighbours of seq s: adj[adj_ptr[s]:adj_ptr[s + 1]]
    adj: Int32s
    ev_ptr: Ints  # events of seq s: ev[ev_ptr[s]:ev_ptr[s + 1]]
    ev: Ints
    one_ids: npt.NDArray[np.bytes_]  # by customer row
    sorted_one_ids: npt.NDArray[np.bytes_]
    sorted_rows: Ints  # the row of each sorted OneID
    c_seq: Ints
    c_created: Ints
    c_merged: Int32s  # the row it was merged into, NONE if none
    c_retired: Flags
    c_anchor: Ints  # seq of the identifier it was issued for, NONE if unknown
    mem_ptr: Ints  # members of row r: mem[mem_ptr[r]:mem_ptr[r + 1]]
    mem: Int32s
    abs_ptr: Ints  # rows merged straight into row r: absorbed[abs_ptr[r]:abs_ptr[r + 1]]
    absorbed: Int32s
    anchors: Ints  # sorted anchors of the rows in anchor_rows
    anchor_rows: Ints
    event_hashes: npt.NDArray[np.uint64]  # sorted hashes of every event id
    event_seqs: Ints

    def row_of(self, one_id: str) -> int | None:
        if not len(self.sorted_one_ids):
            return None
        wanted = one_id.encode("utf-8", "surrogatepass")
        if len(wanted) > self.sorted_one_ids.dtype.itemsize or wanted.endswith(b"\0"):
            return None
        i = int(np.searchsorted(self.sorted_one_ids, wanted))
        if i < len(self.sorted_one_ids) and self.sorted_one_ids[i] == wanted:
            return int(self.sorted_rows[i])
        return None

    def one_id(self, row: int) -> str:
        return bytes(self.one_ids[row]).decode("utf-8", "surrogatepass")

    def customer(self, row: int) -> CustomerRecord:
        merged = int(self.c_merged[row])
        anchor = int(self.c_anchor[row])
        return CustomerRecord(
            self.one_id(row),
            int(self.c_seq[row]),
            moment(int(self.c_created[row])),
            None if merged == NONE else self.one_id(merged),
            bool(self.c_retired[row]),
            None if anchor == NONE else anchor,
        )


@dataclass(frozen=True)
class Overlay:
    """What changed since the base, each entry a whole new value; never changed once published."""

    nodes: Mapping[int, NodeRecord | None] = field(default_factory=dict)  # None: removed
    seqs: Mapping[Key, int] = field(default_factory=dict)  # keys new since the base
    adj: Mapping[int, frozenset[int]] = field(default_factory=dict)
    ev: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    customers: Mapping[str, CustomerRecord] = field(default_factory=dict)
    members: Mapping[str, frozenset[int]] = field(default_factory=dict)
    absorbed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    anchored: Mapping[int, frozenset[str]] = field(default_factory=dict)
    events: Mapping[str, int] = field(default_factory=dict)  # event ids new since the base

    @property
    def size(self) -> int:
        return (
            len(self.nodes)
            + len(self.adj)
            + len(self.ev)
            + len(self.customers)
            + len(self.members)
            + len(self.events)
        )


@dataclass(frozen=True)
class Counters:
    node: int
    customer: int
    event: int


@dataclass(frozen=True)
class Shape:
    base: Base
    overlay: Overlay
    counters: Counters
    generation: int  # the store's write count this shape reflects
    node_count: int
    dirty: frozenset[int] = frozenset()  # seqs a deferred (bulk) write left unresolved
    unwritten: frozenset[int] = frozenset()  # seqs deferred events brought, with no row yet

    # --- identifiers ------------------------------------------------------------
    def seqs(self, keys: Sequence[Key]) -> list[int | None]:
        """Each key's seq, None for keys with no identifier."""
        new, nodes = self.overlay.seqs, self.overlay.nodes
        found: list[int | None] = [new.get(k) for k in keys]
        asked = [i for i, seq in enumerate(found) if seq is None]
        if asked:
            for i, seq in zip(asked, self.base.keys.seqs([keys[i] for i in asked]), strict=True):
                if seq is not None and not (seq in nodes and nodes[seq] is None):
                    found[i] = seq
        return found

    def key(self, seq: int) -> Key:
        record = self.overlay.nodes.get(seq)
        if record is not None:
            return record.key
        found = self.base.keys.key(seq)
        assert found is not None, f"no identifier {seq}"
        return found

    def record(self, seq: int) -> NodeRecord:
        """The identifier's record: a new object, or the overlay's (never to be changed)."""
        found = self.overlay.nodes.get(seq)
        if found is not None:
            return found
        b = self.base
        row = int(b.cust[seq])
        return NodeRecord(
            self.key(seq),
            seq,
            moment(int(b.first[seq])),
            moment(int(b.last[seq])),
            bool(b.blocked[seq]),
            bool(b.shared[seq]),
            int(b.strong[seq]),
            None if row == NONE else b.one_id(row),
        )

    def linkable(self, seq: int) -> bool:
        found = self.overlay.nodes.get(seq)
        if found is not None:
            return found.linkable
        return not (self.base.blocked[seq] or self.base.shared[seq])

    def neighbours(self, seq: int) -> Iterable[int]:
        found = self.overlay.adj.get(seq)
        return found if found is not None else _row(self.base.adj_ptr, self.base.adj, seq)

    def events_of(self, seq: int) -> Sequence[int]:
        found = self.overlay.ev.get(seq)
        return found if found is not None else _row(self.base.ev_ptr, self.base.ev, seq)

    def all_seqs(self) -> Iterator[int]:
        """Every identifier's seq, in order."""
        codes = self.base.keys.type_code
        nodes = self.overlay.nodes
        base = np.flatnonzero(codes != NO_TYPE).tolist()
        removed = {s for s, r in nodes.items() if r is None}
        added = sorted(s for s, r in nodes.items() if r is not None and s >= len(codes))
        yield from (s for s in base if s not in removed)
        yield from added

    # --- customers --------------------------------------------------------------
    def customer(self, one_id: str) -> CustomerRecord | None:
        found = self.overlay.customers.get(one_id)
        if found is not None:
            return found
        row = self.base.row_of(one_id)
        return None if row is None else self.base.customer(row)

    def members(self, one_id: str) -> frozenset[int]:
        found = self.overlay.members.get(one_id)
        if found is not None:
            return found
        row = self.base.row_of(one_id)
        return (
            frozenset() if row is None else frozenset(_row(self.base.mem_ptr, self.base.mem, row))
        )

    def absorbed(self, one_id: str) -> frozenset[str]:
        """The OneIDs merged straight into ``one_id``."""
        found = self.overlay.absorbed.get(one_id)
        if found is not None:
            return found
        b = self.base
        row = b.row_of(one_id)
        if row is None:
            return frozenset()
        return frozenset(b.one_id(r) for r in _row(b.abs_ptr, b.absorbed, row))

    def anchored(self, seq: int) -> frozenset[str]:
        """The OneIDs first issued for the identifier ``seq``."""
        found = self.overlay.anchored.get(seq)
        if found is not None:
            return found
        b = self.base
        lo, hi = np.searchsorted(b.anchors, [seq, seq + 1]).tolist()
        return frozenset(b.one_id(int(r)) for r in b.anchor_rows[lo:hi])

    # --- events -----------------------------------------------------------------
    def event_candidates(self, event_id: str) -> list[int]:
        """Seqs of stored events that may have this id: the overlay's, or hash matches."""
        seq = self.overlay.events.get(event_id)
        if seq is not None:
            return [seq]
        b = self.base
        if not len(b.event_hashes):
            return []
        h = np.uint64(text_hash(event_id))
        lo = int(np.searchsorted(b.event_hashes, h, side="left"))
        hi = int(np.searchsorted(b.event_hashes, h, side="right"))
        found: list[int] = b.event_seqs[lo:hi].tolist()
        return found


def _row(ptr: Ints, values: npt.NDArray[np.int32] | Ints, row: int) -> list[int]:
    """Row ``row`` of compressed rows, empty past the last."""
    if row >= len(ptr) - 1:
        return []
    found: list[int] = values[ptr[row] : ptr[row + 1]].tolist()
    return found
