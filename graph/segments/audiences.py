"""Counting and listing customers by a condition, from an index kept live by every write.

The index (``graph.segments.index``) is made from the store the first time
a condition is asked, in parts and without stopping writes: changes
committed meanwhile are queued and applied once it is made, in commit
order. From then on each committed write (an ingest, a removal, a tag
build, a manual tag, time) brings it up to date before the write returns,
so a count asked after a write returns counts that write. A bulk import or
a rebuild lets it go; the next question makes it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyroaring import BitMap

from graph.errors import InvalidRule
from graph.models import ChangeSet, CustomerRecord
from graph.segments.index import AudienceIndex, CustomerState, Snapshot
from graph.segments.query import Selection
from graph.store.protocol import GraphStore
from graph.tags.aggregates import value_key
from graph.tags.book import CHUNK, TagBook
from graph.tags.conditions import AccountsAre, Condition, TraitIs, tags_named, walk
from graph.tags.facts import MISSING, Facts
from graph.tags.models import TagWrites
from graph.tags.parsing import parse_condition
from graph.tags.rollups import Rollup, RollupFacts
from graph.tags.tagger import LinksOf

FOLLOW_SECONDS = 0.25  # how stale another process's write may be when a question is asked


@dataclass(frozen=True)
class Page:
    total: int
    seqs: list[int]
    one_ids: list[str]
    more: bool


class Audiences:
    def __init__(
        self,
        store: GraphStore,
        tags: TagBook,
        clock: Callable[[], datetime],
        source_priority: Mapping[str, Sequence[str]],
        indexed_traits: Sequence[str] | None = None,
        links_of: LinksOf | None = None,
    ) -> None:
        self._store = store
        self._tags = tags
        self._clock = clock
        self._priority = source_priority
        self._configured = None if indexed_traits is None else frozenset(indexed_traits)
        self._links_of = links_of
        self._index: AudienceIndex | None = None
        self._queue: list[tuple[list[CustomerRecord], set[str], TagWrites | None]] | None = None
        self._lock = threading.Lock()  # the index and the queue change hands under it
        self._building = threading.Lock()  # one build at a time
        # Where in the store's log of other processes' writes the index is, and when it
        # last looked: a question looks again when that is FOLLOW_SECONDS old.
        self._position: int | None = None
        self._followed = 0.0

    # --- questions ---------------------------------------------------------------------
    def parse(self, where: Any, path: str = "$.where") -> Condition | None:
        """The condition ``where`` spells (None: everyone); ``InvalidRule`` naming a bad part."""
        if where is None or where == {}:
            return None
        condition = parse_condition(where, path)
        defined = {s.definition.id for s in self._tags.definitions(FOLLOW_SECONDS)}
        for tag_id in sorted(tags_named(condition) - defined):
            raise InvalidRule(f"no tag {tag_id!r} is defined", _path_of(where, "tag", tag_id, path))
        # A trait is known once some customer has it, or some rule reads it, or the
        # config indexes it: a typo is none of these.
        known = self.snapshot().known_traits | self.wanted_traits()
        for part in walk(condition):
            if isinstance(part, TraitIs) and part.name not in known:
                found = _path_of(where, "trait", part.name, path)
                raise InvalidRule(f"no customer has a trait {part.name!r}", found)
        return condition

    def select(self, condition: Condition | None) -> tuple[BitMap, AudienceIndex]:
        """The customers (seqs) ``condition`` holds for, and the index that says so."""
        index = self._current()
        chosen = Selection(
            index.snapshot, index.one_id_of, self._clock(), self._facts_of(condition)
        )
        return chosen.select(condition), index

    def count(self, condition: Condition | None) -> int:
        return len(self.select(condition)[0])

    def page(self, condition: Condition | None, first: int, after: int | None) -> Page:
        """``first`` customers in seq order after the seq ``after`` (None: from the start)."""
        found, index = self.select(condition)
        start = 0 if after is None else found.rank(after)
        seqs = list(found[start : start + first])
        one_ids = [index.one_id_of[s] for s in seqs]
        return Page(len(found), seqs, one_ids, start + len(seqs) < len(found))

    def breakdown(self, condition: Condition | None, by: str) -> tuple[list[tuple[Any, int]], int]:
        """How many customers meeting ``condition`` hold each value of ``by``, most first.

        ``by`` is a tag's id or a trait's name (``tag:x`` or ``trait:x`` when
        both exist); the second number is how many hold no value at all.
        """
        found, index = self.select(condition)
        kind, name = self._field(by, index.snapshot)
        if kind == "trait" and name not in index.snapshot.traits:
            return self._counted_one_by_one(found, index, name)
        column = index.snapshot.column((kind, name))
        counts = [
            (column.values[key], found.intersection_cardinality(held))
            for key, held in column.by_value.items()
        ]
        counts = sorted((c for c in counts if c[1]), key=lambda c: (-c[1], str(c[0])))
        return counts, len(found) - found.intersection_cardinality(column.present)

    def _field(self, by: str, snapshot: Snapshot) -> tuple[str, str]:
        kind, _, name = by.partition(":") if ":" in by else ("", "", by)
        defined = {s.definition.id for s in self._tags.definitions(FOLLOW_SECONDS)}
        if kind in ("", "tag") and name in defined:
            return "tag", name
        if kind in ("", "trait") and name in snapshot.known_traits:
            return "trait", name
        raise InvalidRule(f"{by!r} is neither a defined tag nor a trait some customer has", "$.by")

    def _counted_one_by_one(
        self, found: BitMap, index: AudienceIndex, trait: str
    ) -> tuple[list[tuple[Any, int]], int]:
        counts: dict[Any, list[Any]] = {}  # value key -> [value, count]
        missing = 0
        seqs = list(found)
        facts_of = self._facts_of(None)
        for start in range(0, len(seqs), CHUNK):
            part = [index.one_id_of[s] for s in seqs[start : start + CHUNK]]
            for facts in facts_of(part).values():
                value = facts.trait(trait)
                if value is MISSING:
                    missing += 1
                    continue
                counts.setdefault(value_key(value), [value, 0])[1] += 1
        ranked = sorted(((v, n) for v, n in counts.values()), key=lambda c: (-c[1], str(c[0])))
        return ranked, missing

    def seqs_of(self, one_ids: Iterable[str]) -> dict[str, int]:
        """Each OneID's seq, customer or not any more (merged, retired)."""
        wanted = list(dict.fromkeys(one_ids))
        index = self._index
        known = {} if index is None else {o: index.seq_of[o] for o in wanted if o in index.seq_of}
        rest = [o for o in wanted if o not in known]
        if rest:
            known.update((o, r.seq) for o, r in self._store.customers(rest).items())
        return known

    def ready(self) -> bool:
        """Whether the index is made for the traits wanted now: a question needs no build."""
        index = self._index
        return index is not None and index.traits == self.wanted_traits()

    def answers_at_once(self, condition: Condition | None) -> bool:
        """Whether the index is made and answers all of ``condition`` (no customer is read)."""
        index = self._index
        if index is None or not self.ready():
            return False
        return condition is None or Selection(index.snapshot, {}, self._clock(), None).indexed(
            condition
        )

    # --- the index ---------------------------------------------------------------------
    def wanted_traits(self) -> frozenset[str]:
        """The traits to index: as configured, else every trait some tag's rule reads."""
        if self._configured is not None:
            return self._configured
        return frozenset(
            part.name
            for s in self._tags.definitions(FOLLOW_SECONDS)
            for condition in s.definition.conditions()
            for part in walk(condition)
            if isinstance(part, TraitIs)
        )

    def snapshot(self) -> Snapshot:
        """The index as of the last committed write, made first if there is none."""
        return self._current().snapshot

    def _current(self) -> AudienceIndex:
        index = self._index
        if index is None or index.traits != self.wanted_traits():
            index = self._build()
        elif time.monotonic() - self._followed >= FOLLOW_SECONDS:
            index = self.follow() or self._build()
        return index

    def follow(self) -> AudienceIndex | None:
        """Bring the index up to what other processes wrote since it last looked.

        Only the customers they named are read again. None: the index is gone
        (or fell too far behind and was let go): make it again.
        """
        with self._lock:
            index = self._index
            if index is None or self._queue is not None:
                return index
            self._followed = time.monotonic()
            found = self._store.changed_since(self._position)
            if found is None:
                self._index = None
                return None
            self._position, named = found
            if named:
                living, gone = self._states(named, index.traits)
                index.apply(living, gone)
            return index

    def _traits_of(self, one_ids: Sequence[str]) -> dict[str, Rollup]:
        """Rollups to read traits from: their heads where stored, else made from the
        events that carry traits (on Neo4j, about one event in eight of the benchmark's)."""
        found = self._store.tag_store.rollup_heads(one_ids)
        missing = [o for o in one_ids if o not in found]
        if missing:
            found.update(self._tags.tagger.trait_rollups(missing, self._store))
        return found

    def _states(
        self, one_ids: Sequence[str], traits: frozenset[str]
    ) -> tuple[list[CustomerState], set[str]]:
        """These customers as the store has them now; those no longer customers apart."""
        members = self._store.members(list(one_ids))
        living = sorted(o for o in one_ids if members.get(o))
        records = self._store.customers(living)
        tags = self._store.tag_store.customer_tags(living)
        rollups = self._traits_of(living) if traits else {}
        states = [
            CustomerState(
                one_id,
                records[one_id].seq,
                {t: held.value for t, held in tags.get(one_id, {}).items()},
                rollups[one_id].surviving_traits(self._priority) if one_id in rollups else None,
            )
            for one_id in living
            if one_id in records
        ]
        return states, set(one_ids) - set(living)

    def let_go(self) -> None:
        with self._lock:
            self._index, self._queue = None, None

    def _build(self) -> AudienceIndex:
        with self._building:
            index = self._index
            wanted = self.wanted_traits()
            if index is not None and index.traits == wanted:
                return index  # made by another reader meanwhile
            with self._lock:
                self._index, self._queue = None, []
                found = self._store.changed_since(None)
                self._position = None if found is None else found[0]
                self._followed = time.monotonic()
            index = AudienceIndex(wanted)
            customers = self._tags.customers()
            for start in range(0, len(customers), CHUNK):
                part = customers[start : start + CHUNK]
                records = self._store.customers(part)
                tags = self._store.tag_store.customer_tags(part)
                rollups = self._traits_of(part)
                index.apply(
                    CustomerState(
                        one_id,
                        records[one_id].seq,
                        {t: held.value for t, held in tags.get(one_id, {}).items()},
                        rollup.surviving_traits(self._priority),
                    )
                    for one_id, rollup in rollups.items()
                    if one_id in records
                )
            with self._lock:
                for queued in self._queue or []:
                    self._apply(index, *queued)
                self._index, self._queue = index, None
            return index

    # --- following writes --------------------------------------------------------------
    def changed(self, changes: ChangeSet) -> None:
        """An identity change was committed (with its tags, if any)."""
        if self._index is None and self._queue is None:
            return
        if changes.deferred or changes.settles_deferred:
            self.let_go()  # a bulk import or a rebuild: made again when next asked
            return
        gone = {u.one_id for u in changes.customer_updates if u.merged_into or u.retired}
        back = [u for u in changes.customer_updates if not (u.merged_into or u.retired)]
        self._follow([*changes.new_customers, *back], gone, changes.tags)

    def tags_written(self, writes: TagWrites) -> None:
        """Tags were written apart from an identity change (a build, time, a manual tag)."""
        if self._index is not None or self._queue is not None:
            self._follow([], set(), writes)

    def _follow(
        self, joined: list[CustomerRecord], gone: set[str], writes: TagWrites | None
    ) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.append((joined, gone, writes))
            elif self._index is not None:
                self._apply(self._index, joined, gone, writes)

    def _apply(
        self,
        index: AudienceIndex,
        joined: list[CustomerRecord],
        gone: set[str],
        writes: TagWrites | None,
    ) -> None:
        seqs = {c.one_id: c.seq for c in joined}
        gone = gone | (writes.dropped if writes is not None else set())
        touched = set(seqs)
        if writes is not None:
            touched |= writes.tags.keys() | writes.rollups.keys()
        touched -= gone
        unknown = [o for o in touched if o not in seqs and o not in index.seq_of]
        if unknown:
            seqs.update((o, r.seq) for o, r in self._store.customers(unknown).items())
        states = []
        for one_id in sorted(touched):
            seq = seqs.get(one_id, index.seq_of.get(one_id))
            if seq is None:
                continue
            tags = traits = None
            if writes is not None and one_id in writes.tags:
                tags = {t: held.value for t, held in writes.tags[one_id].items()}
            if writes is not None and one_id in writes.rollups:
                traits = writes.rollups[one_id].surviving_traits(self._priority)
            states.append(CustomerState(one_id, seq, tags, traits))
        index.apply(states, gone)

    # --- what no index answers ---------------------------------------------------------
    def _facts_of(self, condition: Condition | None) -> Callable[[Sequence[str]], dict[str, Facts]]:
        linked = condition is not None and any(isinstance(c, AccountsAre) for c in walk(condition))
        now = self._clock()

        def facts_of(one_ids: Sequence[str]) -> dict[str, Facts]:
            rollups = self._tags.tagger.rollups(one_ids, self._store)
            members = self._store.members(list(rollups)) if linked else {}
            found: dict[str, Facts] = {}
            for one_id, rollup in rollups.items():
                links: Iterable[Mapping[str, Any]] = ()
                if linked and self._links_of is not None:
                    aliases = self._store.aliases(one_id)
                    links = self._links_of(one_id, aliases, members.get(one_id, set()))
                traits = rollup.surviving_traits(self._priority)
                found[one_id] = RollupFacts(now, traits, rollup, list(links))
            return found

        return facts_of


def _path_of(where: Any, kind: str, name: str, path: str = "$.where") -> str:
    """The JSON path of the first leaf ``{kind: name}`` in ``where``, to name it in an error."""
    return _find(where, kind, name, path) or path


def _find(where: Any, kind: str, name: str, path: str) -> str | None:
    if isinstance(where, dict):
        if where.get(kind) == name:
            return path
        inside = [(f"{path}.{key}", inner) for key, inner in where.items()]
    elif isinstance(where, list):
        inside = [(f"{path}[{n}]", inner) for n, inner in enumerate(where)]
    else:
        return None
    return next((p for at, inner in inside if (p := _find(inner, kind, name, at))), None)
