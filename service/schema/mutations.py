"""Write operations: ingest identity events, remove an identifier.

A mutation is executed whole in a worker thread (``service.http``): decoding
and validating a batch of events is as much work as writing it, and none of
it may hold up the reads the event loop serves. So the resolvers call the
graph directly.
"""

from __future__ import annotations

import strawberry

from graph.identity_graph import IdentityGraph as Core
from graph.pacing import every_few
from service.schema.account_segments import AccountSegmentMutations
from service.schema.accounts import AccountMutations
from service.schema.rfm import RfmMutations
from service.schema.segments import SegmentMutations
from service.schema.tags import TagMutations
from service.schema.types import (
    EventResult,
    IdentifierInput,
    IdentifierRef,
    IdentityEventInput,
    IngestResult,
    RemoveIdentifierResult,
)


@strawberry.type
class Mutation(
    AccountMutations, TagMutations, RfmMutations, SegmentMutations, AccountSegmentMutations
):
    @strawberry.mutation(
        description="Apply identity events; each is applied whole or rejected whole."
    )
    async def ingest_events(
        self, info: strawberry.Info, events: list[IdentityEventInput]
    ) -> IngestResult:
        graph: Core = info.context["graph"]
        results = graph.ingest([e.to_core() for e in every_few(events, 16)])
        return IngestResult(
            accepted=sum(r.status == "ACCEPTED" for r in results),
            rejected=sum(r.status == "REJECTED" for r in results),
            duplicates=sum(r.status == "DUPLICATE" for r in results),
            results=[EventResult.of(r) for r in every_few(results, 64)],
        )

    @strawberry.mutation(
        description="Delete an identifier and its evidence; its customer splits if it must."
    )
    async def remove_identifier(
        self, info: strawberry.Info, identifier: IdentifierInput
    ) -> RemoveIdentifierResult:
        graph: Core = info.context["graph"]
        one_ids = graph.remove_identifier(identifier.to_core())
        normalised = graph.normalise(identifier.to_core())
        return RemoveIdentifierResult(
            removed=IdentifierRef(type=normalised.type, value=normalised.value or ""),
            one_ids=[strawberry.ID(o) for o in one_ids],
        )
