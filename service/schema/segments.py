"""Saved segments: defined, counted, listed, explained, broken down, and asked about the past."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON

from graph.identity_graph import IdentityGraph as Core
from graph.segments.book import Segment as CoreSegment
from graph.tags.definitions import SEGMENT_PREFIX, is_segment
from service.reads import read
from service.schema.account_types import page_size
from service.schema.audiences import (
    ProfileConnection,
    after_cursor,
    choosing,
    connection,
    query_mark,
)
from service.schema.tags import TagStatus

if TYPE_CHECKING:
    from service.schema.types import Profile


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@strawberry.type(description="How many members hold one value (null: hold none).")
class BreakdownEntry:
    value: JSON | None
    count: int


@strawberry.type
class SegmentExplanation:
    member: bool = strawberry.field(description="Whether the condition holds for them now.")
    explanation: JSON = strawberry.field(
        description="The condition tree with, at each leaf, the value seen and whether it held."
    )


@strawberry.type
class SegmentDiff:
    entered: list[strawberry.ID]
    left: list[strawberry.ID]


@strawberry.type(description="A customer entering or leaving a segment, and why.")
class SegmentChange:
    one_id: strawberry.ID
    entered: bool
    at: datetime
    cause: JSON = strawberry.field(
        description="EVENT (with eventId), MERGE, SPLIT, TIME, DEFINITION (with the versions"
        " built), MANUAL, ACCOUNT or RETAG, as a tag's."
    )


@strawberry.type(description="A saved condition whose members are kept live and logged.")
class Segment:
    core: strawberry.Private[CoreSegment]
    id: strawberry.ID
    name: str
    description: str
    where: JSON
    version: int
    status: TagStatus = strawberry.field(
        description="BUILDING while a new or changed definition is applied to everyone."
    )
    progress: float
    changed_at: datetime

    @classmethod
    def of(cls, s: CoreSegment) -> Segment:
        return cls(
            core=s,
            id=strawberry.ID(s.id),
            name=s.name,
            description=s.description,
            where=s.where,
            version=s.version,
            status=TagStatus(s.status.value),
            progress=s.progress,
            changed_at=s.changed_at,
        )

    @strawberry.field(description="When the segment was first defined: its history begins.")
    async def began(self, info: strawberry.Info) -> datetime:
        graph = _graph(info)
        found: datetime = await read(graph, graph.segments.began, self.core)
        return found

    @strawberry.field(
        description="Every definition it had, oldest first (`status` READY: as saved)."
    )
    async def versions(self, info: strawberry.Info) -> list[Segment]:
        graph = _graph(info)
        found = await read(graph, graph.segments.versions, self.core)
        return [Segment.of(v) for v in found]

    @strawberry.field(description="Members now.")
    async def count(self, info: strawberry.Info) -> int:
        graph = _graph(info)
        found: int = await choosing(graph, self.core.membership, graph.segments.count, self.core)
        return found

    @strawberry.field(description="Members now, in the order their OneIDs were first issued.")
    async def members(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> ProfileConnection:
        graph = _graph(info)
        mark = query_mark({"segment": self.core.id})
        start, size = after_cursor(after, mark), page_size(first)
        page = await choosing(
            graph, self.core.membership, graph.segments.members, self.core, size, start
        )
        return connection(page, mark)

    @strawberry.field(description="Why a customer is a member or not, now (null: no customer).")
    async def explain(
        self, info: strawberry.Info, one_id: strawberry.ID
    ) -> SegmentExplanation | None:
        graph = _graph(info)
        found = await run_in_threadpool(graph.segments.explain, self.core, str(one_id))
        if found is None:
            return None
        return SegmentExplanation(member=found[0], explanation=found[1])

    @strawberry.field(
        description="Members counted per value of a tag or trait (`by`: its id or name;"
        " tag:x or trait:x when both exist), most first, then those with none."
    )
    async def breakdown(
        self, info: strawberry.Info, by: str, first: int | None = None
    ) -> list[BreakdownEntry]:
        graph = _graph(info)
        counts, missing = await choosing(
            graph, self.core.membership, graph.segments.breakdown, self.core, by
        )
        entries = [BreakdownEntry(value=v, count=n) for v, n in counts[: page_size(first)]]
        if missing:
            entries.append(BreakdownEntry(value=None, count=missing))
        return entries

    @strawberry.field(description="Members at a moment (BEFORE_HISTORY before `began`).")
    async def count_as_of(self, info: strawberry.Info, time: datetime) -> int:
        graph = _graph(info)
        found = await run_in_threadpool(graph.segments.members_at, self.core, _utc(time))
        return len(found)

    @strawberry.field(description="Members at a moment, a page at a time.")
    async def members_as_of(
        self,
        info: strawberry.Info,
        time: datetime,
        first: int | None = None,
        after: str | None = None,
    ) -> ProfileConnection:
        graph = _graph(info)
        moment = _utc(time)
        mark = query_mark({"segment": self.core.id, "asOf": moment.isoformat()})
        start, size = after_cursor(after, mark), page_size(first)
        page = await run_in_threadpool(
            graph.segments.members_page_at, self.core, moment, size, start
        )
        return connection(page, mark)

    @strawberry.field(description="Who entered and who left between two moments.")
    async def diff(
        self,
        info: strawberry.Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> SegmentDiff:
        graph = _graph(info)
        found = await run_in_threadpool(graph.segments.diff, self.core, _utc(from_), _utc(to))
        return SegmentDiff(
            entered=[strawberry.ID(o) for o in found.entered],
            left=[strawberry.ID(o) for o in found.left],
        )

    @strawberry.field(description="Each entry and exit, oldest first, between two moments.")
    async def changes(
        self,
        info: strawberry.Info,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int | None = None,
    ) -> list[SegmentChange]:
        graph = _graph(info)
        found = await run_in_threadpool(
            graph.segments.changes,
            self.core,
            None if since is None else _utc(since),
            None if until is None else _utc(until),
        )
        return [
            SegmentChange(
                one_id=strawberry.ID(c.one_id), entered=c.after is not None, at=c.at, cause=c.cause
            )
            for c in found[: page_size(first)]
        ]


def _member_of(graph: Core, one_id: str) -> list[CoreSegment]:
    held = graph.store.tag_store.customer_tags([one_id]).get(one_id, {})
    found = (graph.segments.segment(t.removeprefix(SEGMENT_PREFIX)) for t in held if is_segment(t))
    return sorted((s for s in found if s is not None), key=lambda s: s.id)


async def profile_segments(info: strawberry.Info, profile: Profile) -> list[Segment]:
    graph = _graph(info)
    found = await read(graph, _member_of, graph, str(profile.one_id))
    return [Segment.of(s) for s in found]


@strawberry.input(description="A saved segment: `where` in the tag rule language.")
class SegmentInput:
    id: strawberry.ID
    name: str
    description: str | None = None
    where: JSON


@strawberry.type
class SegmentQueries:
    @strawberry.field(description="Every saved segment, by id.")
    async def segments(self, info: strawberry.Info) -> list[Segment]:
        graph = _graph(info)
        found = await read(graph, graph.segments.segments)
        return [Segment.of(s) for s in found]

    @strawberry.field(description="One saved segment, or null.")
    async def segment(self, info: strawberry.Info, id: strawberry.ID) -> Segment | None:
        graph = _graph(info)
        found = await read(graph, graph.segments.segment, str(id))
        return None if found is None else Segment.of(found)


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(
        description="Create or change a segment (INVALID_RULE with the JSON path of the bad"
        " part); its members are found over every customer in the background."
    )
    async def define_segment(self, info: strawberry.Info, input: SegmentInput) -> Segment:
        graph = _graph(info)
        found = graph.segments.define(str(input.id), input.name, input.description, input.where)
        wake = info.context.get("wake_tags")
        if wake is not None:
            wake()
        return Segment.of(found)

    @strawberry.mutation(description="Delete a segment: its members leave (logged).")
    async def delete_segment(self, info: strawberry.Info, id: strawberry.ID) -> Segment:
        return Segment.of(_graph(info).segments.delete(str(id)))
