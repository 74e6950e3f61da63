"""Which customers hold each value of each tag and indexed trait, as compressed bitmaps.

Customers are numbered by their ``seq``, which the store issues once per
OneID and never reuses: the same number in every process and on both
stores, in the order OneIDs were issued, so a page cursor is one number and
the pages before it stay put while customers arrive.

A published ``Snapshot`` never changes: a write builds the columns it
touches anew (copying only the bitmaps of values that moved) and publishes a
new snapshot in one assignment, so a reader holding one sees the state
before a write or after it, never half of it, and takes no lock.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pyroaring import BitMap, FrozenBitMap

from graph.tags.aggregates import is_number, value_key
from graph.tags.conditions import Test
from graph.tags.evaluation import passes
from graph.tags.moments import DaysAgo

FieldKey = tuple[str, str]  # ("tag", tag id) or ("trait", trait name)
# One key per value as rules compare them (1 and 1.0 are one value, true is not 1):
# ``graph.tags.aggregates.value_key``.
ValueKey = Hashable
_ABSENT = -1
_EMPTY = FrozenBitMap()
_RANGES = ("lt", "lte", "gt", "gte", "between", "eq")
MEMO = 64  # leaves' answers a column keeps


@dataclass(frozen=True)
class Column:
    """One tag's or trait's values: who holds each, and who holds any."""

    present: FrozenBitMap = _EMPTY
    by_value: Mapping[ValueKey, FrozenBitMap] = field(default_factory=dict)
    values: Mapping[ValueKey, Any] = field(default_factory=dict)  # the value of each key
    _memo: dict[Any, FrozenBitMap] = field(default_factory=dict, compare=False, repr=False)

    def matching(self, test: Test, now: datetime, everyone: FrozenBitMap) -> BitMap:
        """The customers whose value passes ``test``, as ``graph.tags.evaluation`` decides it.

        Each distinct value is tested once (``passes`` itself, so unknowns and
        kinds behave as in a rule); a numeric range over many values is found
        by bisecting the values sorted once per column.
        """
        if test.op == "has":
            return BitMap(self.present)
        found = BitMap(self._holding(test, now))
        if passes(test, None, now):  # ``missing``: those with no value at all
            found.update(everyone - self.present)
        return found

    def _holding(self, test: Test, now: datetime) -> FrozenBitMap:
        """Those whose value passes: kept per test, as a column never changes once published.

        A marketer refining an audience asks the same leaves again and again;
        a range over many values costs a union of their bitmaps the first time.
        """
        key = (test, now) if _relative(test) else test
        found = self._memo.get(key)
        if found is None:
            if _numeric_range(test):
                keys = self._numeric_keys(test)
            else:
                keys = [k for k, v in self.values.items() if passes(test, v, now)]
            found = (
                FrozenBitMap(BitMap.union(*(self.by_value[k] for k in keys))) if keys else _EMPTY
            )
            if len(self._memo) >= MEMO:
                self._memo.clear()
            self._memo[key] = found
        return found

    @functools.cached_property
    def _numbers(self) -> tuple[list[float], list[ValueKey]]:
        pairs = sorted((float(v), k) for k, v in self.values.items() if is_number(v))
        return [n for n, _ in pairs], [k for _, k in pairs]

    def _numeric_keys(self, test: Test) -> list[ValueKey]:
        numbers, keys = self._numbers
        op, value = test.op, test.value
        low, high = 0, len(numbers)
        if op == "between":
            low = bisect.bisect_left(numbers, value[0])
            high = bisect.bisect_right(numbers, value[1])
        elif op == "eq":
            low, high = bisect.bisect_left(numbers, value), bisect.bisect_right(numbers, value)
        elif op in ("gt", "gte"):
            low = (bisect.bisect_right if op == "gt" else bisect.bisect_left)(numbers, value)
        else:
            high = (bisect.bisect_left if op == "lt" else bisect.bisect_right)(numbers, value)
        return keys[low:high]


def _relative(test: Test) -> bool:
    """A test whose answer moves with now (``daysAgo``), so now is part of its key."""
    values = test.value if isinstance(test.value, tuple) else (test.value,)
    return any(isinstance(v, DaysAgo) for v in values)


def _numeric_range(test: Test) -> bool:
    """A comparison with numbers only: every value that passes is a number, in one range."""
    if test.op not in _RANGES:
        return False
    operands = test.value if test.op == "between" else (test.value,)
    return all(is_number(v) and not isinstance(v, DaysAgo) for v in operands)


@dataclass(frozen=True)
class Snapshot:
    """The index as of one write: read freely, never changed."""

    everyone: FrozenBitMap
    columns: Mapping[FieldKey, Column]
    traits: frozenset[str]  # the traits indexed
    known_traits: frozenset[str]  # every trait some customer had when it was read

    def column(self, key: FieldKey) -> Column:
        return self.columns.get(key) or Column()


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What the index keeps of one customer; None: not part of this change."""

    one_id: str
    seq: int
    tags: Mapping[str, Any] | None = None
    traits: Mapping[str, Any] | None = None


class _Codes:
    """A column as its writer keeps it: each customer's value, by seq, as a small integer."""

    def __init__(self) -> None:
        self.codes = np.full(1024, _ABSENT, dtype=np.int32)
        self.keys: list[ValueKey] = []
        self.code_of: dict[ValueKey, int] = {}

    def get(self, seq: int) -> int:
        return int(self.codes[seq]) if seq < len(self.codes) else _ABSENT

    def set(self, seq: int, key: ValueKey | None) -> None:
        if seq >= len(self.codes):
            grown = np.full(max(seq + 1, 2 * len(self.codes)), _ABSENT, dtype=np.int32)
            grown[: len(self.codes)] = self.codes
            self.codes = grown
        if key is None:
            self.codes[seq] = _ABSENT
            return
        code = self.code_of.get(key)
        if code is None:
            code = self.code_of[key] = len(self.keys)
            self.keys.append(key)
        self.codes[seq] = code


class AudienceIndex:
    """Keeps the current ``snapshot`` from each change, in the order changes were committed.

    Only the writer calls ``apply``; readers read ``snapshot``.
    """

    def __init__(self, traits: Iterable[str]) -> None:
        self.traits = frozenset(traits)
        self.one_id_of: dict[int, str] = {}  # grows only: a seq is one OneID forever
        self.seq_of: dict[str, int] = {}
        self._codes: dict[FieldKey, _Codes] = {}
        self._known_traits: set[str] = set()
        self.snapshot = Snapshot(FrozenBitMap(), {}, self.traits, frozenset())

    def apply(self, living: Iterable[CustomerState], gone: Iterable[str] = ()) -> None:
        """Customers as they are after a change, and those no longer customers."""
        adds: dict[FieldKey, dict[ValueKey, tuple[Any, list[int]]]] = {}
        removes: dict[FieldKey, dict[ValueKey, list[int]]] = {}
        joined: list[int] = []
        left: list[int] = []

        def put(key: FieldKey, seq: int, value: Any) -> None:
            codes = self._codes.get(key)
            if codes is None:
                if value is None:
                    return
                codes = self._codes[key] = _Codes()
            old = codes.get(seq)
            new_key = None if value is None else value_key(value)
            old_key = None if old == _ABSENT else codes.keys[old]
            if old_key == new_key:
                return
            if old_key is not None:
                removes.setdefault(key, {}).setdefault(old_key, []).append(seq)
            if new_key is not None:
                adds.setdefault(key, {}).setdefault(new_key, (value, []))[1].append(seq)
            codes.set(seq, new_key)

        tag_columns = {name for kind, name in self._codes if kind == "tag"}
        for state in living:
            self.one_id_of[state.seq] = state.one_id
            self.seq_of[state.one_id] = state.seq
            joined.append(state.seq)
            if state.tags is not None:
                tag_columns.update(state.tags)
                for tag_id in tag_columns:
                    put(("tag", tag_id), state.seq, state.tags.get(tag_id))
            if state.traits is not None:
                self._known_traits.update(state.traits)
                for name in self.traits:
                    put(("trait", name), state.seq, state.traits.get(name))
        for one_id in gone:
            seq = self.seq_of.get(one_id)
            if seq is None:
                continue
            left.append(seq)
            for key in list(self._codes):
                put(key, seq, None)
        self._publish(adds, removes, joined, left)

    def _publish(
        self,
        adds: Mapping[FieldKey, Mapping[ValueKey, tuple[Any, list[int]]]],
        removes: Mapping[FieldKey, Mapping[ValueKey, list[int]]],
        joined: list[int],
        left: list[int],
    ) -> None:
        before = self.snapshot
        columns = dict(before.columns)
        for key in adds.keys() | removes.keys():
            old = before.column(key)
            by_value = dict(old.by_value)
            values = dict(old.values)
            present = BitMap(old.present)
            for held_key, seqs in removes.get(key, {}).items():
                held = BitMap(by_value.get(held_key, _EMPTY))
                gone = BitMap(seqs)
                held.difference_update(gone)
                present.difference_update(gone)
                if held:
                    by_value[held_key] = FrozenBitMap(held)
                else:
                    by_value.pop(held_key, None)
                    values.pop(held_key, None)
            for held_key, (value, seqs) in adds.get(key, {}).items():
                held = BitMap(by_value.get(held_key, _EMPTY))
                held.update(seqs)
                present.update(seqs)
                by_value[held_key] = FrozenBitMap(held)
                values.setdefault(held_key, value)
            columns[key] = Column(FrozenBitMap(present), by_value, values)
        everyone = before.everyone
        if joined or left:
            grown = BitMap(everyone)
            grown.update(joined)
            grown.difference_update(BitMap(left))
            everyone = FrozenBitMap(grown)
        self.snapshot = Snapshot(everyone, columns, self.traits, frozenset(self._known_traits))
