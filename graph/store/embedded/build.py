"""Building a ``Base``: adjacency, event lists and customers as compressed rows of arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from graph.models import CustomerRecord
from graph.store.embedded.keys import KeyIndex
from graph.store.embedded.shape import NONE, Base, Flags, Int32s, Ints, micros_of


def rows_of(src: Ints, dst: Ints, size: int) -> tuple[Ints, Ints]:
    """``dst`` grouped by ``src`` (each group sorted): a pointer array and the values."""
    order = np.lexsort((dst, src))
    ptr = np.zeros(size + 1, dtype=np.int64)
    if len(src):
        np.cumsum(np.bincount(src, minlength=size), out=ptr[1:])
    return ptr, dst[order]


def both_ways(a: Ints, b: Ints) -> tuple[Ints, Ints]:
    """Distinct undirected edges as (from, to) both ways."""
    if not len(a):
        return a, b
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


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
