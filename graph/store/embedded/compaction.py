"""Folding a shape's overlay into a new base, in time linear in the base and no more.

The base's compressed rows (neighbours, events, members, aliases) are
copied around the rows the overlay replaces, not sorted again; customers
keep their rows and new ones come after; sorted hashes take the new ones
in by a merge. For a million identifiers this is a few tenths of a second
of numpy work, most of it outside the interpreter's lock, where building a
base from scratch took seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.hashing import hashes_of
from graph.models import CustomerRecord
from graph.pacing import every_few, step_aside
from graph.store.embedded.keys import NO_TYPE
from graph.store.embedded.shape import NONE, Base, Ints, Overlay, Shape, micros_of


def compact(shape: Shape) -> Shape:
    """The same shape with its overlay folded into a new base, and an empty overlay."""
    base, overlay = shape.base, shape.overlay
    if not overlay.size:
        return shape
    live = {s: r for s, r in every_few(overlay.nodes.items()) if r is not None}
    removed = [s for s, r in overlay.nodes.items() if r is None]
    old = len(base.keys)
    added = [(s, r.key) for s, r in every_few(live.items()) if s >= old]
    keys = base.keys.extended(added, removed, shape.counters.node + 1)
    size = len(keys)
    step_aside()
    customers = _Customers(base, overlay.customers)
    step_aside()
    first, last = _grown(base.first, size, 0), _grown(base.last, size, 0)
    blocked, shared = _grown(base.blocked, size, False), _grown(base.shared, size, False)
    strong, cust = _grown(base.strong, size, 0), _grown(base.cust, size, NONE)
    cust[removed] = NONE
    if live:
        seqs = np.fromiter(live, dtype=np.int64, count=len(live))
        records = list(live.values())
        first[seqs] = [micros_of(r.first_seen) for r in every_few(records)]
        last[seqs] = [micros_of(r.last_seen) for r in every_few(records)]
        blocked[seqs] = [r.blocked for r in records]
        shared[seqs] = [r.shared for r in records]
        strong[seqs] = [r.strong_neighbours for r in records]
        cust[seqs] = [
            NONE if r.one_id is None else customers.row(r.one_id) for r in every_few(records)
        ]
    assert int(np.count_nonzero(keys.type_code != NO_TYPE)) == shape.node_count
    step_aside()
    adj_ptr, adj = patch_rows(base.adj_ptr, base.adj, overlay.adj, size)
    step_aside()
    ev_ptr, ev = patch_rows(base.ev_ptr, base.ev, overlay.ev, size)
    step_aside()
    count = customers.count
    members = {customers.row(o): seqs for o, seqs in every_few(overlay.members.items())}
    mem_ptr, mem = patch_rows(base.mem_ptr, base.mem, members, count)
    absorbed = {
        customers.row(o): [customers.row(a) for a in ids]
        for o, ids in every_few(overlay.absorbed.items())
    }
    abs_ptr, absorbed_rows = patch_rows(base.abs_ptr, base.absorbed, absorbed, count)
    step_aside()
    anchored = np.flatnonzero(customers.anchor != NONE)
    by_anchor = np.argsort(customers.anchor[anchored], kind="stable")
    events = list(overlay.events.items())
    event_hashes, event_seqs = merge_sorted(
        base.event_hashes,
        base.event_seqs,
        hashes_of(e for e, _ in every_few(events)),
        np.array([s for _, s in events], dtype=np.int64),
    )
    new_base = Base(
        keys,
        first,
        last,
        blocked,
        shared,
        strong,
        cust,
        adj_ptr,
        adj.astype(np.int32, copy=False),
        ev_ptr,
        ev,
        customers.one_ids,
        *customers.sorted_ids(),
        customers.seq,
        customers.created,
        customers.merged,
        customers.retired,
        customers.anchor,
        mem_ptr,
        mem.astype(np.int32, copy=False),
        abs_ptr,
        absorbed_rows.astype(np.int32, copy=False),
        customers.anchor[anchored][by_anchor],
        anchored[by_anchor].astype(np.int64),
        event_hashes,
        event_seqs,
    )
    return replace(shape, base=new_base, overlay=Overlay())


class _Customers:
    """The base's customer arrays with the overlay's records written in and new rows added."""

    def __init__(self, base: Base, changed: Mapping[str, CustomerRecord]) -> None:
        old = len(base.one_ids)
        rows = {one_id: base.row_of(one_id) for one_id in every_few(changed)}
        new = [one_id for one_id, row in rows.items() if row is None]
        self._rows = {one_id: row for one_id, row in rows.items() if row is not None}
        self._rows.update((one_id, old + n) for n, one_id in enumerate(new))
        self.count = old + len(new)
        encoded = [o.encode("utf-8", "surrogatepass") for o in new]
        width = max([base.one_ids.dtype.itemsize, *map(len, encoded)])
        self.one_ids = np.concatenate(
            [base.one_ids.astype(f"S{width}", copy=False), np.array(encoded, dtype=f"S{width}")]
        )
        self.seq = _grown(base.c_seq, self.count, 0)
        self.created = _grown(base.c_created, self.count, 0)
        self.merged = _grown(base.c_merged, self.count, NONE)
        self.retired = _grown(base.c_retired, self.count, False)
        self.anchor = _grown(base.c_anchor, self.count, NONE)
        self._base = base
        for one_id, record in every_few(changed.items()):
            row = self._rows[one_id]
            self.seq[row] = record.seq
            self.created[row] = micros_of(record.created_at)
            self.merged[row] = self._row(record.merged_into)
            self.retired[row] = record.retired
            self.anchor[row] = NONE if record.anchor is None else record.anchor

    def _row(self, one_id: str | None) -> int:
        return NONE if one_id is None else self.row(one_id)

    def row(self, one_id: str) -> int:
        """The row of a customer the base or the overlay has."""
        found = self._rows.get(one_id)
        if found is None:
            found = self._base.row_of(one_id)
            assert found is not None, f"no customer {one_id}"
            self._rows[one_id] = found  # a customer's identifiers ask for it one after another
        return found

    def sorted_ids(self) -> tuple[npt.NDArray[np.bytes_], Ints]:
        """The OneIDs in order and their rows: the base's, with the new rows merged in.

        A row's OneID never changes, so only the new ones need placing; sorting
        all of them again held the interpreter for about 100 ms at 300,000.
        """
        old = len(self._base.one_ids)
        new_ids = self.one_ids[old:]
        order = np.argsort(new_ids)
        at = np.searchsorted(self._base.sorted_one_ids, new_ids[order])
        ids = np.insert(
            self._base.sorted_one_ids.astype(self.one_ids.dtype, copy=False), at, new_ids[order]
        )
        rows = np.insert(self._base.sorted_rows, at, order.astype(np.int64) + old)
        return ids, rows.astype(np.int64, copy=False)


def _grown(values: npt.NDArray[Any], size: int, fill: object) -> npt.NDArray[Any]:
    out = np.full(size, fill, dtype=values.dtype)
    out[: len(values)] = values
    return out


def patch_rows(
    ptr: Ints, values: npt.NDArray[Any], replaced: Mapping[int, Collection[int]], size: int
) -> tuple[Ints, Ints]:
    """Compressed rows (``values[ptr[r]:ptr[r + 1]]``) with the rows in ``replaced`` replaced.

    Rows between two replaced ones keep their length, so each such run is
    one contiguous copy in both layouts: the work is a copy of the values
    and a step per replaced row. (Moving every value by its own index took
    a second at a million identifiers, in numpy calls that hold the
    interpreter's lock for tens of milliseconds at a time.) A replaced
    row's values come in the order its collection gives them; the values
    keep ``values``' dtype, so that no copy of them all is made to narrow it.
    """
    old_rows = len(ptr) - 1
    lengths = np.zeros(size, dtype=np.int64)
    lengths[:old_rows] = np.diff(ptr)
    changed = np.fromiter(replaced, dtype=np.int64, count=len(replaced))
    sizes = np.fromiter(map(len, replaced.values()), dtype=np.int64, count=len(replaced))
    lengths[changed] = sizes
    new_ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_ptr[1:])
    out = np.empty(int(new_ptr[-1]), dtype=values.dtype)  # no second copy to narrow it
    cut = np.sort(changed[changed < old_rows])
    run_starts = np.concatenate(([0], cut + 1))
    run_ends = np.concatenate((cut, [old_rows]))
    runs = zip(
        ptr[run_starts].tolist(), ptr[run_ends].tolist(), new_ptr[run_starts].tolist(), strict=True
    )
    for start, end, to in every_few(runs):
        if start < end:
            out[to : to + end - start] = values[start:end]
    if len(changed):
        starts = np.repeat(new_ptr[changed], sizes)
        within = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(sizes) - sizes, sizes
        )
        out[starts + within] = np.fromiter(
            chain.from_iterable(replaced.values()), dtype=np.int64, count=int(sizes.sum())
        )
    return new_ptr, out


def merge_sorted(
    keys: npt.NDArray[np.uint64], values: Ints, new_keys: npt.NDArray[np.uint64], new_values: Ints
) -> tuple[npt.NDArray[np.uint64], Ints]:
    """Sorted ``keys`` (and their ``values``) with new ones merged in: an insert, not a sort."""
    if not len(new_keys):
        return keys, values
    order = np.argsort(new_keys, kind="stable")
    new_keys, new_values = new_keys[order], new_values[order]
    at = np.searchsorted(keys, new_keys, side="right")
    return np.insert(keys, at, new_keys), np.insert(values, at, new_values)
