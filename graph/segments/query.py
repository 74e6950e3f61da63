"""Choosing customers by a condition: index leaves as bitmap operations, the rest per candidate.

A condition is the tag rule language (``graph.tags.parsing``). Tag leaves
and indexed trait leaves are answered by the index; anything else (an
aggregate, a profile field, account links, a trait not indexed) is decided
with ``graph.tags.evaluation.holds`` on each customer still a candidate
once the index has narrowed them: within ``all`` the indexed parts go
first, within ``any`` a customer already in is not asked again, and ``not``
takes its inner part from the candidates only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from pyroaring import BitMap

from graph.segments.index import Snapshot
from graph.tags.conditions import AllOf, AnyOf, Condition, NotOf, TagIs, TraitIs
from graph.tags.evaluation import holds
from graph.tags.facts import Facts

# The facts of these customers (OneIDs), to decide what no index answers.
FactsOf = Callable[[Sequence[str]], Mapping[str, Facts]]
CHUNK = 500  # customers whose facts are read at once


class Selection:
    def __init__(
        self,
        snapshot: Snapshot,
        one_id_of: Mapping[int, str],
        now: datetime,
        facts_of: FactsOf | None,
    ) -> None:
        self.snapshot = snapshot
        self._one_id_of = one_id_of
        self.now = now
        self._facts_of = facts_of
        self.evaluated = 0  # customers decided one by one: what no index answered

    def select(self, condition: Condition | None) -> BitMap:
        """The customers (seqs) for whom ``condition`` holds; None: everyone."""
        everyone = BitMap(self.snapshot.everyone)
        return everyone if condition is None else self._within(condition, everyone)

    def indexed(self, condition: Condition) -> bool:
        if isinstance(condition, TagIs):
            return True
        if isinstance(condition, TraitIs):
            return condition.name in self.snapshot.traits
        if isinstance(condition, AllOf | AnyOf):
            return all(self.indexed(c) for c in condition.items)
        if isinstance(condition, NotOf):
            return self.indexed(condition.item)
        return False

    def _within(self, condition: Condition, candidates: BitMap) -> BitMap:
        """Those of ``candidates`` for whom ``condition`` holds."""
        if not candidates:
            return candidates
        if isinstance(condition, AllOf):
            found = candidates
            for part in self._indexed_first(condition.items):
                found = self._within(part, found)
                if not found:
                    break
            return found
        if isinstance(condition, AnyOf):
            found, rest = BitMap(), BitMap(candidates)
            for part in self._indexed_first(condition.items):
                held = self._within(part, rest)
                found |= held
                rest -= held
                if not rest:
                    break
            return found
        if isinstance(condition, NotOf):
            return candidates - self._within(condition.item, candidates)
        if isinstance(condition, TagIs):
            column = self.snapshot.column(("tag", condition.tag))
            return candidates & column.matching(condition.test, self.now, self.snapshot.everyone)
        if isinstance(condition, TraitIs) and condition.name in self.snapshot.traits:
            column = self.snapshot.column(("trait", condition.name))
            return candidates & column.matching(condition.test, self.now, self.snapshot.everyone)
        return self._one_by_one(condition, candidates)

    def _indexed_first(self, parts: Sequence[Condition]) -> list[Condition]:
        return sorted(parts, key=lambda c: not self.indexed(c))

    def _one_by_one(self, condition: Condition, candidates: BitMap) -> BitMap:
        found = BitMap()
        seqs = list(candidates)
        for start in range(0, len(seqs), CHUNK):
            part = seqs[start : start + CHUNK]
            one_ids = {self._one_id_of[s]: s for s in part}
            assert self._facts_of is not None, "no facts to decide what the index does not"
            facts = self._facts_of(list(one_ids))
            self.evaluated += len(part)
            for one_id, seq in one_ids.items():
                held = facts.get(one_id)
                if held is not None and holds(condition, held):
                    found.add(seq)
        return found
