"""Building a ``Base``: adjacency, event lists and customers as compressed rows of arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.models import CustomerRecord, FirstLoad, LoadedGraph
from graph.store.embedded.keys import KeyIndex
from graph.store.embedded.shape import (
    NONE,
    Base,
    Counters,
    Flags,
    Int32s,
    Ints,
    Overlay,
    Shape,
    micros_of,
)


def rows_of(src: Ints, dst: Ints, size: int) -> tuple[Ints, Ints]:
    """``dst`` grouped by ``src`` (each group sorted): a pointer array and the values."""
    ptr = np.zeros(size + 1, dtype=np.int64)
    if not len(src):
        return ptr, dst.astype(np.int64)
    span = int(dst.max()) + 1
    order = np.argsort(src.astype(np.int64) * span + dst, kind="stable")
    np.cumsum(np.bincount(src, minlength=size), out=ptr[1:])
    return ptr, dst[order].astype(np.int64)


def both_ways(a: Ints, b: Ints) -> tuple[Ints, Ints]:
    """Distinct undirected edges (no loops) as (from, to) both ways."""
    if not len(a):
        return a, b
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    span = int(hi.max()) + 1
    codes = np.sort((lo * span + hi)[lo != hi])  # a sort, not np.unique: that hashes first
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])]
    lo, hi = codes // span, codes % span
    return np.concatenate([lo, hi]), np.concatenate([hi, lo])


def build_base(
    keys: KeyIndex,
    first: Ints,
    last: Ints,
    blocked: Flags,
    shared: Flags,
    strong: Int32s,
    cust: Int32s,
    edges: tuple[Ints, Ints],
    events_of: tuple[Ints, Ints],
    customers: Sequence[CustomerRecord],
    event_hashes: npt.NDArray[np.uint64],
    event_seqs: Ints,
) -> Base:
    """A base from columns by seq.

    ``cust`` is each identifier's customer, a position in ``customers``;
    ``edges`` are pairs of seqs and ``events_of`` pairs of (seq, event seq).
    """
    size = len(keys)
    row = {c.one_id: r for r, c in enumerate(customers)}
    src, dst = both_ways(*edges)
    adj_ptr, adj = rows_of(src, dst, size)
    ev_ptr, ev = rows_of(events_of[0], events_of[1], size)
    encoded = [c.one_id.encode("utf-8", "surrogatepass") for c in customers]
    width = max(map(len, encoded), default=1)
    one_ids = np.array(encoded, dtype=f"S{width}")
    order = np.argsort(one_ids, kind="stable")
    count = len(customers)
    merged = np.fromiter(
        (NONE if c.merged_into is None else row.get(c.merged_into, NONE) for c in customers),
        dtype=np.int32,
        count=count,
    )
    anchor = np.fromiter(
        (NONE if c.anchor is None else c.anchor for c in customers), dtype=np.int64, count=count
    )
    has_customer = np.flatnonzero(cust != NONE)
    mem_ptr, mem = rows_of(cust[has_customer].astype(np.int64), has_customer, count)
    is_alias = np.flatnonzero(merged != NONE)
    abs_ptr, absorbed = rows_of(merged[is_alias].astype(np.int64), is_alias, count)
    anchored = np.flatnonzero(anchor != NONE)
    by_anchor = np.argsort(anchor[anchored], kind="stable")
    by_hash = np.argsort(event_hashes, kind="stable")
    return Base(
        keys,
        first,
        last,
        blocked,
        shared,
        strong,
        cust,
        adj_ptr,
        adj.astype(np.int32),
        ev_ptr,
        ev.astype(np.int64),
        one_ids,
        one_ids[order],
        order.astype(np.int64),
        np.fromiter((c.seq for c in customers), dtype=np.int64, count=count),
        np.fromiter((micros_of(c.created_at) for c in customers), dtype=np.int64, count=count),
        merged,
        np.fromiter((c.retired for c in customers), dtype=np.bool_, count=count),
        anchor,
        mem_ptr,
        mem.astype(np.int32),
        abs_ptr,
        absorbed.astype(np.int32),
        anchor[anchored][by_anchor],
        anchored[by_anchor].astype(np.int64),
        event_hashes[by_hash],
        event_seqs[by_hash],
    )


def customer_rows(node_one_ids: Sequence[str | None], rows: Mapping[str, int]) -> Int32s:
    """Each identifier's customer row from its OneID."""
    return np.fromiter(
        (NONE if o is None else rows[o] for o in node_one_ids),
        dtype=np.int32,
        count=len(node_one_ids),
    )


def first_shape(load: FirstLoad, graph: LoadedGraph, generation: int, max_event: int) -> Shape:
    """The shape of a first load into an empty store, from the loader's own arrays.

    Node position ``p`` is seq ``p + 1``; seq 0 is no identifier.
    """
    count = len(load.keys)
    keys = KeyIndex.build(
        [None, *load.keys], np.concatenate([np.zeros(1, dtype=np.uint64), graph.key_hashes])
    )

    def by_seq(values: npt.NDArray[Any], fill: object) -> npt.NDArray[Any]:
        return np.concatenate([np.full(1, fill, dtype=values.dtype), values])

    edges = graph.edges + 1
    base = build_base(
        keys,
        by_seq(graph.first_seen, 0),
        by_seq(graph.last_seen, 0),
        by_seq(np.array(load.blocked, dtype=np.bool_), False),
        by_seq(graph.shared, False),
        by_seq(graph.strong_neighbours.astype(np.int32), 0),
        by_seq(graph.customer.astype(np.int32), NONE),
        (edges[0::2], edges[1::2]),
        (graph.event_nodes + 1, graph.event_seqs),
        load.customers,
        graph.event_hashes,
        graph.hashed_seqs,
    )
    counters = Counters(count, max((c.seq for c in load.customers), default=0), max_event)
    return Shape(base, Overlay(), counters, generation, count)
