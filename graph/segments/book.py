"""Saved segments: a named condition whose members are kept live, logged, and known at any time.

A segment is a rule tag under ``segment/``: its membership is decided with
every write that touches a customer, in that write's transaction (an
ingest, a merge, a split, a tag that moved, time), by the same machinery
as any tag, and every entry and exit is logged with who, when and why. A
changed definition is a new version, built over every customer like any
changed rule: the entries and exits it makes are logged with its version.
Who was a member at a moment is the log replayed up to it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graph.errors import BeforeHistory, InvalidRule, NotFound
from graph.segments.audiences import FOLLOW_SECONDS, Audiences, Page
from graph.tags.book import CHUNK, TagBook
from graph.tags.conditions import Condition, TagIs, Test
from graph.tags.definitions import SEGMENT_PREFIX, TAG_ID, is_segment, parse_definition
from graph.tags.evaluation import Explanation
from graph.tags.models import StoredDefinition, TagChange, TagStatus

CATEGORY = "SEGMENT"


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    description: str
    where: Any  # the condition as given
    version: int
    status: TagStatus
    progress: float
    changed_at: datetime

    @property
    def tag_id(self) -> str:
        return SEGMENT_PREFIX + self.id

    @property
    def membership(self) -> Condition:
        return TagIs(self.tag_id, Test("has"), {"tag": self.tag_id, "op": "has"})

    @classmethod
    def of(cls, stored: StoredDefinition) -> Segment:
        d = stored.definition
        return cls(
            d.id.removeprefix(SEGMENT_PREFIX),
            d.name,
            d.description,
            d.given.get("when"),
            stored.version,
            stored.status,
            stored.progress,
            stored.changed_at,
        )


@dataclass(frozen=True)
class Diff:
    entered: list[str]
    left: list[str]


class SegmentBook:
    def __init__(self, tags: TagBook, audiences: Audiences, clock: Callable[[], datetime]) -> None:
        self._tags = tags
        self._audiences = audiences
        self._clock = clock

    # --- definitions -------------------------------------------------------------------
    def define(self, id: str, name: str, description: str | None, where: Any) -> Segment:
        """Save a new or changed segment, built over every customer in the background.

        Refused whole (nothing saved) with ``InvalidRule`` naming the bad part:
        an id that is not a slug, an empty or bad condition, an unknown tag or
        trait.
        """
        if not isinstance(id, str) or not TAG_ID.fullmatch(id):
            raise InvalidRule(
                "id must be a slug: lower-case letters, digits, - and _, at most 64", "$.id"
            )
        if not where:
            raise InvalidRule("a segment needs a condition", "$.where")
        self._audiences.parse(where)
        definition = parse_definition(SEGMENT_PREFIX + id, name, CATEGORY, description, when=where)
        return Segment.of(self._tags.define(definition, managed=True))

    def delete(self, id: str) -> Segment:
        """Every member leaves (logged), and the segment is gone; its history stays."""
        self._stored(id)
        return Segment.of(self._tags.delete(SEGMENT_PREFIX + id))

    def segments(self) -> list[Segment]:
        held = self._tags.definitions(FOLLOW_SECONDS)
        return [Segment.of(s) for s in held if is_segment(s.definition.id)]

    def segment(self, id: str) -> Segment | None:
        stored = self._tags.definition(SEGMENT_PREFIX + id, FOLLOW_SECONDS)
        return None if stored is None else Segment.of(stored)

    def _stored(self, id: str) -> Segment:
        found = self.segment(id)
        if found is None:
            raise NotFound(f"no segment {id!r} is defined")
        return found

    # --- now ---------------------------------------------------------------------------
    def count(self, segment: Segment) -> int:
        return self._audiences.count(segment.membership)

    def members(self, segment: Segment, first: int, after: int | None) -> Page:
        return self._audiences.page(segment.membership, first, after)

    def breakdown(self, segment: Segment, by: str) -> tuple[list[tuple[Any, int]], int]:
        return self._audiences.breakdown(segment.membership, by)

    def explain(self, segment: Segment, one_id: str) -> tuple[bool, Explanation] | None:
        """The condition decided for this customer now, leaf by leaf (None: no customer)."""
        stored = self._tags.definition(segment.tag_id)
        canonical = self._tags.store.canonical_one_id(one_id)
        if stored is None or stored.definition.when is None or canonical is None:
            return None
        return self._tags.explain_rule(canonical, stored.definition.when)

    # --- history -----------------------------------------------------------------------
    def began(self, segment: Segment) -> datetime:
        """When the segment was first defined: nothing is known of its members before."""
        versions = self._tags.store.tag_store.definition_versions(segment.tag_id)
        return min((v.changed_at for v in versions), default=segment.changed_at)

    def versions(self, segment: Segment) -> list[Segment]:
        """Every definition the segment had, oldest first: a change of rule is logged too."""
        found = self._tags.store.tag_store.definition_versions(segment.tag_id)
        return [Segment.of(v) for v in found]

    def log(self, segment: Segment) -> list[TagChange]:
        return self._tags.store.tag_store.segment_log(segment.tag_id)

    def members_at(self, segment: Segment, moment: datetime) -> set[str]:
        """The OneIDs that were members at ``moment`` (as they were called then)."""
        began = self.began(segment)
        if moment < began:
            raise BeforeHistory(
                f"segment {segment.id!r} began at {began.isoformat()};"
                f" nothing is known of {moment.isoformat()}",
                began=began.isoformat(),
            )
        members: set[str] = set()
        for change in self.log(segment):
            if change.at <= moment:
                if change.after is None:
                    members.discard(change.one_id)
                else:
                    members.add(change.one_id)
        return members

    def members_page_at(
        self, segment: Segment, moment: datetime, first: int, after: int | None
    ) -> Page:
        """``members_at`` a page at a time, in seq order as ``members`` is."""
        seqs = self._audiences.seqs_of(self.members_at(segment, moment))
        ordered = sorted((seq, one_id) for one_id, seq in seqs.items())
        start = 0 if after is None else bisect.bisect_right([s for s, _ in ordered], after)
        page = ordered[start : start + first]
        return Page(
            len(ordered),
            [s for s, _ in page],
            [o for _, o in page],
            start + len(page) < len(ordered),
        )

    def diff(self, segment: Segment, start: datetime, end: datetime) -> Diff:
        if end < start:
            raise InvalidRule("to is before from", "$.to")
        before, after = self.members_at(segment, start), self.members_at(segment, end)
        return Diff(sorted(after - before), sorted(before - after))

    # --- activation ------------------------------------------------------------------
    def export(
        self, segment: Segment, types: Sequence[str] | None, as_of: datetime | None = None
    ) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Each member (now, or at ``as_of``) with its identifiers of ``types`` (None: all).

        Members are in the order ``members`` pages them. A member at ``as_of``
        merged into another customer since is given under its OneID then, with
        the identifiers of the customer it is part of now.
        """
        if as_of is None:
            found, index = self._audiences.select(segment.membership)
            ordered = [index.one_id_of[s] for s in found]
        else:
            seqs = self._audiences.seqs_of(self.members_at(segment, as_of))
            ordered = [o for o, _ in sorted(seqs.items(), key=lambda item: item[1])]
        wanted = None if types is None else set(types)
        store = self._tags.store
        for start in range(0, len(ordered), CHUNK):
            part = ordered[start : start + CHUNK]
            now_called = store.canonical_one_ids(part)
            members = store.members(sorted(set(now_called.values())))
            for one_id in part:
                held = members.get(now_called.get(one_id, one_id), set())
                by_type: dict[str, list[str]] = {}
                for type_name, value in sorted(held):
                    if wanted is None or type_name in wanted:
                        by_type.setdefault(type_name, []).append(value)
                yield one_id, by_type

    def changes(
        self, segment: Segment, since: datetime | None, until: datetime | None
    ) -> list[TagChange]:
        """Each entry and exit between two moments (either open), oldest first."""
        return [
            c
            for c in self.log(segment)
            if (since is None or c.at >= since) and (until is None or c.at <= until)
        ]
