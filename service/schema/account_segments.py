"""Saved account segments: a named condition over accounts, counted and listed when asked."""

from __future__ import annotations

from datetime import datetime

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON

from graph.identity_graph import IdentityGraph as Core
from graph.segments.account_book import AccountSegment as CoreAccountSegment
from service.reads import read
from service.schema.account_types import AccountConnection
from service.schema.accounts import accounts_page


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


@strawberry.type(description="A saved condition over accounts; its members are found when asked.")
class AccountSegment:
    core: strawberry.Private[CoreAccountSegment]
    id: strawberry.ID
    name: str
    description: str
    where: JSON
    changed_at: datetime

    @classmethod
    def of(cls, s: CoreAccountSegment) -> AccountSegment:
        return cls(
            core=s,
            id=strawberry.ID(s.id),
            name=s.name,
            description=s.description,
            where=s.where,
            changed_at=s.changed_at,
        )

    @strawberry.field(description="Accounts meeting it now, in id order.")
    async def accounts(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> AccountConnection:
        graph = _graph(info)
        found = await run_in_threadpool(graph.account_segments.members, self.core)
        return accounts_page(found, first, after)


@strawberry.input(description="A saved account segment: `where` as accounts(where) takes it.")
class AccountSegmentInput:
    id: strawberry.ID
    name: str
    description: str | None = None
    where: JSON


@strawberry.type
class AccountSegmentQueries:
    @strawberry.field(description="Every saved account segment, by id.")
    async def account_segments(self, info: strawberry.Info) -> list[AccountSegment]:
        graph = _graph(info)
        found = await read(graph, graph.account_segments.segments)
        return [AccountSegment.of(s) for s in found]

    @strawberry.field(description="One saved account segment, or null.")
    async def account_segment(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> AccountSegment | None:
        graph = _graph(info)
        found = await read(graph, graph.account_segments.segment, str(id))
        return None if found is None else AccountSegment.of(found)


@strawberry.type
class AccountSegmentMutations:
    @strawberry.mutation(
        description="Create or change an account segment (INVALID_RULE names a bad part)."
    )
    async def define_account_segment(
        self, info: strawberry.Info, input: AccountSegmentInput
    ) -> AccountSegment:
        found = _graph(info).account_segments.define(
            str(input.id), input.name, input.description, input.where
        )
        return AccountSegment.of(found)

    @strawberry.mutation(description="Delete an account segment.")
    async def delete_account_segment(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> AccountSegment:
        return AccountSegment.of(_graph(info).account_segments.delete(str(id)))
