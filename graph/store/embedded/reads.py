"""Every read of the embedded store, against one ``Shape`` and the SQLite file.

A reader takes the published shape and reads the file only when it needs
evidence details, events or history: each such statement reads the file's
generation with its rows (one statement is one snapshot), and the read
stands only if every statement saw the shape's generation. Otherwise a
commit landed meanwhile: the view's version says so and the read is made
again. The writer reads the same way, through its own connection, inside
its transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.hashing import hashes_of
from graph.models import (
    CustomerRecord,
    CustomerSource,
    EdgeObservation,
    HistoryEntry,
    Key,
    Neighbourhood,
    NodeRecord,
    Pair,
    StoredEvent,
    pair,
)
from graph.pacing import every_few, statement, step_aside
from graph.store import composed
from graph.store.embedded.schema import GENERATION
from graph.store.embedded.shape import Shape

_dt = datetime.fromisoformat


class FileAt:
    """The file, read by a view whose shape is of generation ``expected``.

    No transaction is opened: a reader that needs nothing but the shape (a
    resolve) touches no file at all, and one that does pays one statement,
    one step, per thing it reads. Each step gives the interpreter up, and
    beside a writer that wants it too each one waits for the writer's turn
    to end. ``expected`` None is the writer's own connection, inside its
    transaction; ``lagging`` is a shape that deferred writes have left behind
    (nothing they wrote is resolved yet, so it is still the answer), where
    the statements need only agree with one another.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        expected: int | None = None,
        lagging: bool = False,
        ahead: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.expected = expected
        self.lagging = lagging
        self._ahead = ahead
        self._seen: int | None = None
        self.moved = False

    def values(self, selects: list[tuple[str, object]]) -> list[Any]:
        """The value of each ``select`` with its one ``?`` bound to its param, in one statement."""
        columns = ", ".join(f"({select})" for select, _ in selects)
        params = tuple(param for _, param in selects)
        if self.expected is None:
            row: tuple[Any, ...] = self.db.execute(f"SELECT {columns}", params).fetchone()
            return list(row)
        row = self.db.execute(
            f"SELECT (SELECT value FROM meta WHERE name = '{GENERATION}'), {columns}", params
        ).fetchone()
        at, found = int(row[0] or 0), list(row[1:])
        if self._seen is None:
            self._seen = at
        if at != self._seen or (at != self.expected and not self.lagging):
            self.moved = True
            if self._ahead is not None and at > self.expected:
                self._ahead(at)
        return found


class ShapeReads:
    """The store protocol's reads over one shape; ``file`` holds the evidence's details."""

    def __init__(self, shape: Shape, file: FileAt) -> None:
        self.shape = shape
        self.file = file

    def version(self) -> int:
        """The shape's generation, or -1 once the file was found at another one."""
        return -1 if self.file.moved else self.shape.generation

    # --- the graph ------------------------------------------------------------------
    def _seqs(self, keys: Iterable[Key]) -> dict[Key, int]:
        wanted = list(dict.fromkeys(keys))
        return {k: s for k, s in zip(wanted, self.shape.seqs(wanted), strict=True) if s is not None}

    def nodes(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        shape = self.shape
        found = {}
        for k, s in self._seqs(keys).items():
            step_aside()  # a write's batch reads a thousand or two here
            found[k] = shape.record(s)
        return found

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]:
        pairs = list(pairs)
        seqs = self._seqs(k for p in pairs for k in p)
        shape = self.shape
        found = set()
        for a, b in pairs:
            step_aside()
            if a in seqs and b in seqs and seqs[b] in shape.neighbours(seqs[a]):
                found.add((a, b))
        return found

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        keys = list(keys)
        seqs = self._seqs(keys)
        shape = self.shape
        return {
            k: {shape.key(o) for o in shape.neighbours(seqs[k])} if k in seqs else set()
            for k in keys
        }

    def neighbourhood(self, keys: Iterable[Key]) -> Neighbourhood:
        keys = list(keys)
        seqs = self._seqs(keys)
        shape = self.shape
        around: dict[Key, set[Key]] = {}
        records: dict[Key, NodeRecord] = {}
        for key in keys:
            step_aside()
            others = around[key] = set()
            seq = seqs.get(key)
            if seq is None:
                continue
            for o in shape.neighbours(seq):
                other = shape.key(o)
                others.add(other)
                if other not in records:
                    records[other] = shape.record(o)
        return around, records

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        shape = self.shape
        seeds = list(seeds)
        seqs = self._seqs(seeds)

        def can_link(key: Key, seq: int | None) -> bool:
            if key in linkable:
                return linkable[key]
            return seq is not None and shape.linkable(seq)

        seen: set[Key] = set()
        edges: set[Pair] = set()
        stack = [(k, seqs.get(k)) for k in seeds if k in seqs or k in linkable]
        seen.update(k for k, _ in stack)
        while stack:
            step_aside()
            key, seq = stack.pop()
            if seq is None or not can_link(key, seq):
                continue
            for other_seq in shape.neighbours(seq):
                other = shape.key(other_seq)
                if not can_link(other, other_seq):
                    continue
                edges.add(pair(key, other))
                if other not in seen:
                    seen.add(other)
                    stack.append((other, other_seq))
        return seen, edges

    def customers(self, one_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        shape = self.shape
        found = {o: shape.customer(o) for o in set(one_ids)}
        return {o: c for o, c in found.items() if c is not None}

    def anchored(self, seqs: Iterable[int]) -> list[CustomerRecord]:
        shape = self.shape
        one_ids = set[str]().union(*(shape.anchored(s) for s in seqs))
        found = (shape.customer(o) for o in sorted(one_ids))
        return [c for c in found if c is not None]

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]:
        shape = self.shape
        return {o: {shape.key(s) for s in shape.members(o)} for o in every_few(one_ids, 16)}

    def known_events(
        self, event_ids: Iterable[str], hashes: npt.NDArray[np.uint64] | None = None
    ) -> set[str]:
        """Ids among ``event_ids`` already stored; a hash match is checked against the log.

        ``hashes`` are the ids' ``text_hash`` when the caller has them already.
        """
        shape = self.shape
        wanted = list(event_ids)
        known = shape.overlay.events.keys() & wanted
        base = shape.base
        if not len(base.event_hashes) or not wanted:
            return known
        found = hashes_of(wanted) if hashes is None else hashes
        step_aside()
        at = np.searchsorted(base.event_hashes, found)
        at[at == len(base.event_hashes)] = 0
        hits = np.flatnonzero(base.event_hashes[at] == found)
        if not len(hits):
            return known
        asked = {wanted[i] for i in hits.tolist()}
        check = sorted({s for e in asked for s in shape.event_candidates(e)})
        stored = {row[0] for row in self._event_rows(check, "event_id")}
        return known | (stored & asked)

    def dirty_keys(self) -> list[Key]:
        shape = self.shape
        return [shape.key(s) for s in sorted(shape.dirty)]

    def node_count(self) -> int:
        return self.shape.node_count

    def last_event_seq(self) -> int:
        return self.shape.counters.event

    def counters(self) -> tuple[int, int, int]:
        c = self.shape.counters
        return c.node, c.customer, c.event

    # --- the API's reads ------------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        shape = self.shape
        seen: set[str] = set()
        current = shape.customer(one_id)
        while current is not None and current.merged_into and current.one_id not in seen:
            seen.add(current.one_id)
            current = shape.customer(current.merged_into)
        return None if current is None else current.one_id

    def canonical_one_ids(self, one_ids: Iterable[str]) -> dict[str, str]:
        shape = self.shape
        found = {}
        for one_id in set(one_ids):
            canonical = self.canonical_one_id(one_id)
            record = None if canonical is None else shape.customer(canonical)
            if canonical is not None and record is not None and not record.retired:
                found[one_id] = canonical
        return found

    def placements(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str], dict[Key, str | None]]:
        return composed.placements(self, one_ids, keys)

    def customer_sources(self, one_ids: Iterable[str]) -> dict[str, CustomerSource]:
        return composed.customer_sources(self, one_ids)

    def aliases(self, one_id: str) -> list[str]:
        shape = self.shape
        found: set[str] = set()
        frontier = [one_id]
        while frontier:
            absorbed = shape.absorbed(frontier.pop()) - found - {one_id}
            found |= absorbed
            frontier.extend(absorbed)
        return sorted(found)

    def _all(self, select: str, values: Iterable[object]) -> list[list[Any]]:
        """The rows of ``select`` for ``?`` bound to ``values`` (a JSON array), in one step.

        SQLite hands rows over one step at a time, and every step gives up
        the interpreter: beside a writer that wants it too, each step waited
        for the writer's turn to end, and fetching a customer's events a row at
        a time took most of a profile's time. Aggregated into one JSON array,
        they come in one step.
        """
        return self._alls([(select, values)])[0]

    def _alls(self, selects: list[tuple[str, Iterable[object]]]) -> list[list[list[Any]]]:
        """The rows of each select as ``_all`` gives them, all in one statement."""
        found = statement(
            self.file.values, [(select, json.dumps(list(values))) for select, values in selects]
        )
        return [json.loads(text) for text in found]

    def _event_rows(self, seqs: Iterable[int], columns: str, only: str | None = None) -> list[Any]:
        return self._all(*_event_select(seqs, columns, only))

    def events_for(self, keys: Iterable[Key], traits_only: bool = False) -> list[StoredEvent]:
        return _stored_events(self._all(*self._events_select(keys, traits_only)))

    def _events_select(self, keys: Iterable[Key], traits_only: bool) -> tuple[str, list[int]]:
        shape = self.shape
        seqs = [e for s in self._seqs(keys).values() for e in shape.events_of(s)]
        return _event_select(seqs, _STORED_EVENT, "traits != '{}'" if traits_only else None)

    def events_and_history(
        self, keys: Iterable[Key], one_ids: Iterable[str]
    ) -> tuple[list[StoredEvent], list[HistoryEntry]]:
        """``events_for(keys)`` and ``history(one_ids)`` in one statement.

        Beside a writer, every statement a read makes costs it the writer's
        turn once or twice (see ``FileAt``); a profile needs both.
        """
        events, history = self._alls([self._events_select(keys, False), _history_select(one_ids)])
        return _stored_events(events), _history_entries(history)

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]:
        """Each source's evidence for each pair: the events that carry both identifiers."""
        pairs = list(pairs)
        shape = self.shape
        seqs = self._seqs(k for p in pairs for k in p)
        wanted: list[tuple[Key, Key, list[int]]] = []
        for a, b in pairs:
            if a not in seqs or b not in seqs:
                continue
            lo, hi = (a, b) if seqs[a] < seqs[b] else (b, a)
            shorter, longer = sorted((shape.events_of(seqs[a]), shape.events_of(seqs[b])), key=len)
            common = set(longer).intersection(shorter)
            if common:
                wanted.append((lo, hi, sorted(common)))
        rows = self._event_rows((s for *_, seqs in wanted for s in seqs), "seq, source, timestamp")
        seen = {seq: (source, timestamp) for seq, source, timestamp in rows}
        found = []
        for lo, hi, event_seqs in wanted:
            by_source: dict[str, list[str]] = {}
            for seq in event_seqs:
                source, timestamp = seen[seq]
                by_source.setdefault(source, []).append(timestamp)
            for source, stamps in sorted(by_source.items()):
                times = [_dt(t) for t in stamps]
                found.append(EdgeObservation(lo, hi, source, min(times), max(times), len(times)))
        return found

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]:
        return _history_entries(self._all(*_history_select(one_ids)))

    def all_keys(self) -> Iterator[Key]:
        shape = self.shape
        for seq in shape.all_seqs():
            yield shape.key(seq)

    def assignments(self) -> Iterator[tuple[Key, str | None]]:
        shape = self.shape
        for seq in shape.all_seqs():
            record = shape.record(seq)
            yield record.key, record.one_id


_STORED_EVENT = "seq, event_id, source, timestamp, received_at, keys, traits, name, properties"


def _event_select(
    seqs: Iterable[int], columns: str, only: str | None = None
) -> tuple[str, list[int]]:
    return (
        f"SELECT json_group_array(json_array({columns})) FROM events"
        " WHERE seq IN (SELECT value FROM json_each(?))" + (f" AND {only}" if only else ""),
        sorted(set(seqs)),
    )


def _stored_events(rows: list[Any]) -> list[StoredEvent]:
    return [
        StoredEvent(
            r[0],
            r[1],
            r[2],
            _dt(r[3]),
            _dt(r[4]),
            [(k[0], k[1]) for k in json.loads(r[5])],
            json.loads(r[6]),
            name=r[7],
            properties=None if r[8] is None else json.loads(r[8]),
        )
        for r in sorted(rows)
    ]


def _history_select(one_ids: Iterable[str]) -> tuple[str, list[str]]:
    return (
        "SELECT json_group_array(json_array(id, kind, one_id, others, at, reason, event_ids,"
        " evidence)) FROM history WHERE id IN (SELECT history FROM history_index"
        " WHERE one_id IN (SELECT value FROM json_each(?)))",
        sorted(set(one_ids)),
    )


def _history_entries(rows: list[Any]) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            r[1], r[2], json.loads(r[3]), _dt(r[4]), r[5], json.loads(r[6]), json.loads(r[7])
        )
        for r in sorted(rows)
    ]
