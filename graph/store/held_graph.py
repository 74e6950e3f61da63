"""The part of the graph a writing process read or wrote last, kept for its next batches.

A networked store pays a round trip for every read a batch makes: the
records of the identifiers it touches, their neighbours level by level, the
members of the customers they belong to. In an ingest stream most of those
were read or written by the batches just before, so the writer keeps them,
brought up to date by each change it commits, and asks the database only for
the rest.

What is held is right only while no other process writes. Every writer
counts its batches on one lock node; a batch that does not follow the last
one this process committed lets go of everything first. Within a batch, what
is held answers only until the batch writes: later reads see the batch's own
uncommitted writes, and neither the held state nor those reads could stand
in for one another.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from graph.models import ChangeSet, Key, NodeRecord, Pair

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class HeldGraph:
    """Identifiers' records and stored neighbours, and customers' members, as last committed.

    Used by the one batch a process runs at a time (the resolver's write lock),
    so it takes no lock of its own. Holds at most ``most`` identifiers and
    ``most // 4`` customers, dropping those used longest ago.
    """

    def __init__(self, most: int = 100_000) -> None:
        self._most = most
        # Each held identifier's record, and all its stored neighbours when known.
        self._records: OrderedDict[Key, NodeRecord] = OrderedDict()
        self._around: dict[Key, set[Key]] = {}
        self._members: OrderedDict[str, set[Key]] = OrderedDict()
        self._member_of: dict[Key, str] = {}  # owner of each key in a held member set
        self._as_of: int | None = None  # the batch after which what is held is so
        self._answering = False

    # --- the batch's course --------------------------------------------------------------
    def begin(self, batch: int) -> None:
        """Batch ``batch`` starts: what is held answers if it was so after ``batch - 1``."""
        if self._as_of != batch - 1:
            self.let_go()
        self._answering = True

    def wrote(self) -> None:
        """The batch wrote: from now on its reads see that, which nothing held stands for."""
        self._answering = False

    def applied(self, changes: ChangeSet) -> None:
        """``changes`` is committed: what it altered is held as it is now.

        A change that removes identifiers, or loads or resolves events in bulk,
        rewrites more than it lists one by one: everything is let go instead.
        """
        if changes.removed_nodes or changes.deferred or changes.settles_deferred:
            self.let_go()
            return
        assigned = dict(changes.assignments)
        for node in changes.new_nodes:
            if node.key not in assigned and node.one_id is not None:
                assigned[node.key] = node.one_id
        for customer in changes.new_customers:  # its members are all in ``assigned``
            self._keep_members(customer.one_id, set())
        records = self._records
        for node in itertools.chain(changes.new_nodes, changes.node_updates.values()):
            self._keep_record(node.copy())  # its OneID as it was: ``assigned`` follows
        for node in changes.new_nodes:  # a new identifier had no stored edge before
            if node.key in records:
                self._around[node.key] = set()
        for key, one_id in assigned.items():
            record = records.get(key)
            if record is not None:
                record.one_id = one_id
            self._move_member(key, one_id)
        around = self._around
        for event in changes.events:
            for a, b in itertools.combinations(dict.fromkeys(event.keys), 2):
                if a in around:
                    around[a].add(b)
                if b in around:
                    around[b].add(a)

    def finished(self, batch: int) -> None:
        """Batch ``batch`` committed (and ``applied`` was told each of its changes)."""
        self._as_of = batch
        self._answering = False

    def let_go(self) -> None:
        self._records.clear()
        self._around.clear()
        self._members.clear()
        self._member_of.clear()
        self._as_of = None

    # --- answers -------------------------------------------------------------------------
    @property
    def answering(self) -> bool:
        return self._answering

    def records(self, keys: Iterable[Key]) -> tuple[dict[Key, NodeRecord], list[Key]]:
        """The held records among ``keys`` (copies), and the keys not held."""
        if not self._answering:
            return {}, list(keys)
        return _looked_up(self._records, keys, NodeRecord.copy)

    def neighbours(self, keys: Iterable[Key]) -> tuple[dict[Key, set[Key]], list[Key]]:
        """The stored neighbours of the held keys among ``keys``, and the keys not held.

        Held only when the key's record and every neighbour's record are held
        too: a reader of neighbours looks at their records next.
        """
        found: dict[Key, set[Key]] = {}
        missing: list[Key] = []
        if not self._answering:
            return found, list(keys)
        records, around = self._records, self._around
        for key in keys:
            others = around.get(key)
            if others is None or key not in records or not all(o in records for o in others):
                missing.append(key)
            else:
                records.move_to_end(key)
                found[key] = set(others)
        return found, missing

    def pairs(self, pairs: Iterable[Pair]) -> tuple[set[Pair], list[Pair]]:
        """Which of ``pairs`` are stored edges, as far as held; and the pairs not held."""
        found: set[Pair] = set()
        missing: list[Pair] = []
        if not self._answering:
            return found, list(pairs)
        around = self._around
        for p in pairs:
            a, b = p
            others = around.get(a)
            if others is None and (others := around.get(b)) is not None:
                a, b = b, a
            if others is None:
                missing.append(p)
            elif b in others:
                found.add(p)
        return found, missing

    def members(self, one_ids: Iterable[str]) -> tuple[dict[str, set[Key]], list[str]]:
        """The held members of ``one_ids`` (empty for a customer with none), and those not held."""
        if not self._answering:
            return {}, list(one_ids)
        return _looked_up(self._members, one_ids, set)

    # --- what a batch read before it wrote -------------------------------------------------
    def keep_records(self, records: Iterable[NodeRecord]) -> None:
        if self._answering:
            for record in records:
                self._keep_record(record.copy())

    def keep_neighbours(self, around: dict[Key, set[Key]], records: dict[Key, NodeRecord]) -> None:
        """Complete stored neighbours of keys whose records are held or in ``records``."""
        if not self._answering:
            return
        self.keep_records(records.values())
        for key, others in around.items():
            if key in self._records:
                self._around[key] = set(others)

    def keep_members(self, members: dict[str, set[Key]]) -> None:
        if not self._answering:
            return
        for one_id, held in members.items():
            self._keep_members(one_id, held)

    # --- keeping -------------------------------------------------------------------------
    def _keep_members(self, one_id: str, held: set[Key]) -> None:
        self._drop_members(one_id)
        self._members[one_id] = set(held)
        member_of = self._member_of
        for key in held:
            was = member_of.get(key)
            if was is not None and was != one_id:
                self._members[was].discard(key)
            member_of[key] = one_id
        while len(self._members) > self._most // 4:
            self._drop_members(next(iter(self._members)))

    def _keep_record(self, record: NodeRecord) -> None:
        records = self._records
        records[record.key] = record
        records.move_to_end(record.key)
        while len(records) > self._most:
            gone, _ = records.popitem(last=False)
            self._around.pop(gone, None)

    def _move_member(self, key: Key, one_id: str | None) -> None:
        was = self._member_of.pop(key, None)
        if was is not None:
            self._members[was].discard(key)
        if one_id is not None and one_id in self._members:
            self._members[one_id].add(key)
            self._member_of[key] = one_id

    def _drop_members(self, one_id: str) -> None:
        for key in self._members.pop(one_id, ()):
            if self._member_of.get(key) == one_id:
                del self._member_of[key]


def _looked_up(
    held: OrderedDict[K, V], wanted: Iterable[K], copy: Callable[[V], V]
) -> tuple[dict[K, V], list[K]]:
    """Copies of what ``held`` has of ``wanted`` (now the most recently used), and the rest."""
    found: dict[K, V] = {}
    missing: list[K] = []
    for key in wanted:
        value = held.get(key)
        if value is None:
            missing.append(key)
        else:
            held.move_to_end(key)
            found[key] = copy(value)
    return found, missing
