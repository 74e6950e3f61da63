"""Read operations: who is this identifier, the unified profile, the graph, explanations."""

from __future__ import annotations

import strawberry

from graph.identity_graph import IdentityGraph as Core
from service.reads import read
from service.schema.account_segments import AccountSegmentQueries
from service.schema.accounts import AccountQueries
from service.schema.audiences import AudienceQueries
from service.schema.rfm import RfmQueries
from service.schema.segments import SegmentQueries
from service.schema.tags import TagQueries
from service.schema.types import (
    IdentifierInput,
    IdentifierResolution,
    IdentityGraph,
    LinkExplanation,
    Profile,
)


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


async def _one_profile(graph: Core, one_id: str) -> Profile | None:
    """One profile, read at once.

    A DataLoader would hold the request back a turn of the event loop, behind
    every other request ready to run, to batch what is a single read; lists of
    resolutions use one.
    """
    found = await read(graph, graph.profile, one_id)
    return Profile.of(found) if found is not None else None


@strawberry.type
class Query(
    AccountQueries,
    TagQueries,
    RfmQueries,
    AudienceQueries,
    SegmentQueries,
    AccountSegmentQueries,
):
    @strawberry.field(description="Resolve identifiers to OneIDs, in input order.")
    async def resolve_identifiers(
        self, info: strawberry.Info, identifiers: list[IdentifierInput]
    ) -> list[IdentifierResolution]:
        graph = _graph(info)
        found = await read(graph, graph.resolve, [i.to_core() for i in identifiers])
        return [IdentifierResolution.of(r) for r in found]

    @strawberry.field(description="A customer's profile; an alias OneID gives the survivor's.")
    async def profile(self, info: strawberry.Info, one_id: strawberry.ID) -> Profile | None:
        return await _one_profile(_graph(info), str(one_id))

    @strawberry.field(description="The profile of whoever holds this identifier, or null.")
    async def profile_by_identifier(
        self, info: strawberry.Info, type: str, value: str
    ) -> Profile | None:
        graph = _graph(info)
        found = await read(
            graph, graph.resolve_one, IdentifierInput(type=type, value=value).to_core()
        )
        if found.one_id is None:
            return None
        return await _one_profile(graph, found.one_id)

    @strawberry.field(description="A customer's identifier nodes and evidence edges.")
    async def identity_graph(
        self, info: strawberry.Info, one_id: strawberry.ID
    ) -> IdentityGraph | None:
        graph = _graph(info)
        found = await read(graph, graph.customer_graph, str(one_id))
        return IdentityGraph.of(found) if found is not None else None

    @strawberry.field(description="The evidence path joining two identifiers, or why none does.")
    async def explain_link(
        self, info: strawberry.Info, a: IdentifierInput, b: IdentifierInput
    ) -> LinkExplanation:
        graph = _graph(info)
        found = await read(graph, graph.explain, a.to_core(), b.to_core())
        return LinkExplanation.of(found)
