"""GraphQL types and their conversion from ``graph`` models; no GraphQL type leaks inward."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph.events import AccountLinkInput as CoreAccountLinkInput
from graph.events import EventInput
from graph.events import IdentifierInput as CoreIdentifierInput
from graph.explain import Explanation
from graph.identity_graph import CustomerGraph, Resolution
from graph.models import EdgeObservation, Key
from graph.models import HistoryEntry as CoreHistoryEntry
from graph.profiles import Profile as CoreProfile
from graph.resolver import EventResult as CoreEventResult

if TYPE_CHECKING:
    from service.schema.account_types import AccountContact, AccountHistoryEntry, AccountMatch
    from service.schema.segments import Segment
    from service.schema.tags import ProfileTag, TagChange


@strawberry.input(description="One identifier as a channel saw it; it is normalised on arrival.")
class IdentifierInput:
    type: str
    value: str

    def to_core(self) -> CoreIdentifierInput:
        return CoreIdentifierInput(self.type, self.value)


@strawberry.input(
    description="The company an event's person works for: at least one of id, name, domain."
)
class AccountLinkInput:
    id: str | None = None
    name: str | None = None
    domain: str | None = None
    title: str | None = None
    department: str | None = None

    def to_core(self) -> CoreAccountLinkInput:
        return CoreAccountLinkInput(self.id, self.name, self.domain, self.title, self.department)


@strawberry.input(description="Identifiers one channel saw together, with when and what else.")
class IdentityEventInput:
    source: str
    identifiers: list[IdentifierInput]
    event_id: str | None = None
    timestamp: datetime | None = None
    traits: JSON | None = None
    account: AccountLinkInput | None = None
    name: str | None = strawberry.field(
        default=None,
        description="What happened (order_paid, page_view); without it, an identity event alone.",
    )
    properties: JSON | None = strawberry.field(
        default=None,
        description="Facts of what happened ({amount, category}); traits describe the person.",
    )

    @classmethod
    def from_coerced(cls, value: dict[str, Any]) -> IdentityEventInput:
        """Build from graphql-core's already coerced and validated variable value."""
        return cls(
            source=value["source"],
            identifiers=[
                IdentifierInput(type=i["type"], value=i["value"]) for i in value["identifiers"]
            ],
            event_id=value.get("eventId"),
            timestamp=value.get("timestamp"),
            traits=value.get("traits"),
            account=None if (a := value.get("account")) is None else AccountLinkInput(**a),
            name=value.get("name"),
            properties=value.get("properties"),
        )

    def to_core(self) -> EventInput:
        return EventInput(
            source=self.source,
            identifiers=[i.to_core() for i in self.identifiers],
            event_id=self.event_id,
            timestamp=self.timestamp,
            traits=self.traits,
            account=None if self.account is None else self.account.to_core(),
            name=self.name,
            properties=self.properties,
        )


@strawberry.enum
class EventStatus(Enum):
    ACCEPTED = "ACCEPTED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


@strawberry.type
class EventResult:
    index: int
    event_id: str | None
    one_id: strawberry.ID | None
    status: EventStatus
    warnings: list[str]
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, r: CoreEventResult) -> EventResult:
        return cls(
            index=r.index,
            event_id=r.event_id,
            one_id=strawberry.ID(r.one_id) if r.one_id else None,
            status=EventStatus(r.status),
            warnings=r.warnings,
            error_code=r.error_code,
            error_message=r.error_message,
        )


@strawberry.type
class IngestResult:
    accepted: int
    rejected: int
    duplicates: int
    results: list[EventResult]


@strawberry.enum
class IdentifierStatus(Enum):
    LINKED = "LINKED"
    UNKNOWN = "UNKNOWN"
    BLOCKED = "BLOCKED"
    INVALID = "INVALID"
    SHARED = "SHARED"


@strawberry.type
class IdentifierRef:
    type: str
    value: str

    @classmethod
    def of(cls, key: Key) -> IdentifierRef:
        return cls(type=key[0], value=key[1])


@strawberry.type
class Identifier:
    type: str
    value: str
    first_seen: datetime
    last_seen: datetime
    sources: list[str]


@strawberry.type
class IdentifierGroup:
    type: str
    identifiers: list[Identifier]


@strawberry.type
class Trait:
    name: str
    value: JSON
    source: str
    observed_at: datetime


@strawberry.enum
class HistoryKind(Enum):
    MERGE = "merge"
    SPLIT = "split"
    RETIRE = "retire"
    RESTORE = "restore"


@strawberry.type(
    description="A merge, split, retirement or restore (a OneID given back) of customers, and why."
)
class HistoryEntry:
    kind: HistoryKind
    one_id: strawberry.ID
    others: list[strawberry.ID]
    at: datetime
    reason: str
    event_ids: list[str]
    evidence: JSON

    @strawberry.field(
        description="The account links this change moved to another customer, one entry each."
    )
    async def account_links(
        self, info: strawberry.Info
    ) -> list[Annotated[AccountHistoryEntry, strawberry.lazy("service.schema.account_types")]]:
        from service.schema.accounts import history_account_links

        others = [str(o) for o in self.others]
        return await history_account_links(info, self.kind.value, str(self.one_id), others, self.at)

    @classmethod
    def of(cls, h: CoreHistoryEntry) -> HistoryEntry:
        return cls(
            kind=HistoryKind(h.kind),
            one_id=strawberry.ID(h.one_id),
            others=[strawberry.ID(o) for o in h.others],
            at=h.at,
            reason=h.reason,
            event_ids=h.event_ids,
            evidence=h.evidence,
        )


@strawberry.type(description="The unified customer: every identifier, trait and change.")
class Profile:
    one_id: strawberry.ID
    identifiers: list[IdentifierGroup]
    traits: list[Trait]
    first_seen: datetime
    last_seen: datetime
    sources: list[str]
    event_count: int
    aliases: list[strawberry.ID]
    history: list[HistoryEntry]

    @strawberry.field(description="Every trait's surviving value, as one JSON object.")
    def trait_values(self) -> JSON:
        return {t.name: t.value for t in self.traits}

    @strawberry.field(description="The surviving value of one trait, or null.")
    def trait(self, name: str) -> JSON | None:
        for t in self.traits:
            if t.name == name:
                return t.value
        return None

    @strawberry.field(description="The accounts this customer is a contact of.")
    async def accounts(
        self, info: strawberry.Info
    ) -> list[Annotated[AccountContact, strawberry.lazy("service.schema.account_types")]]:
        from service.schema.accounts import profile_accounts

        return await profile_accounts(info, self)

    @strawberry.field(description="The customer's tags: value, since when, who put it, and why.")
    async def tags(
        self, info: strawberry.Info
    ) -> list[Annotated[ProfileTag, strawberry.lazy("service.schema.tags")]]:
        from service.schema.tags import profile_tags

        return await profile_tags(info, self)

    @strawberry.field(description="The saved segments the customer is a member of now.")
    async def segments(
        self, info: strawberry.Info
    ) -> list[Annotated[Segment, strawberry.lazy("service.schema.segments")]]:
        from service.schema.segments import profile_segments

        return await profile_segments(info, self)

    @strawberry.field(description="One tag of the customer, or null if it does not have it.")
    async def tag(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> Annotated[ProfileTag, strawberry.lazy("service.schema.tags")] | None:
        from service.schema.tags import profile_tag

        return await profile_tag(info, self, str(id))

    @strawberry.field(description="Every change of the customer's tags (or of one), oldest first.")
    async def tag_history(
        self, info: strawberry.Info, tag_id: strawberry.ID | None = None
    ) -> list[Annotated[TagChange, strawberry.lazy("service.schema.tags")]]:
        from service.schema.tags import profile_tag_history

        return await profile_tag_history(info, self, None if tag_id is None else str(tag_id))

    @strawberry.field(description="Accounts the customer's email domains match, not linked yet.")
    async def account_suggestions(
        self, info: strawberry.Info
    ) -> list[Annotated[AccountMatch, strawberry.lazy("service.schema.account_types")]]:
        from service.schema.accounts import profile_account_suggestions

        return await profile_account_suggestions(info, self)

    @classmethod
    def of(cls, p: CoreProfile) -> Profile:
        groups: dict[str, list[Identifier]] = {}
        for i in p.identifiers:
            groups.setdefault(i.type, []).append(
                Identifier(
                    type=i.type,
                    value=i.value,
                    first_seen=i.first_seen,
                    last_seen=i.last_seen,
                    sources=i.sources,
                )
            )
        return cls(
            one_id=strawberry.ID(p.one_id),
            identifiers=[IdentifierGroup(type=t, identifiers=v) for t, v in groups.items()],
            traits=[
                Trait(name=t.name, value=t.value, source=t.source, observed_at=t.observed_at)
                for t in p.traits
            ],
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            sources=p.sources,
            event_count=p.event_count,
            aliases=[strawberry.ID(a) for a in p.aliases],
            history=[HistoryEntry.of(h) for h in p.history],
        )


@strawberry.type
class IdentifierResolution:
    type: str
    value: str
    normalized: str | None
    one_id: strawberry.ID | None
    status: IdentifierStatus
    reason: str | None

    @classmethod
    def of(cls, r: Resolution) -> IdentifierResolution:
        return cls(
            type=r.type,
            value=r.value,
            normalized=r.normalized,
            one_id=strawberry.ID(r.one_id) if r.one_id else None,
            status=IdentifierStatus(r.status),
            reason=r.reason,
        )

    @strawberry.field(description="The customer's profile, batched across the list.")
    async def profile(self, info: strawberry.Info) -> Profile | None:
        if self.one_id is None:
            return None
        found: Profile | None = await info.context["loaders"].profiles.load(str(self.one_id))
        return found


@strawberry.type
class Evidence:
    source: str
    first_seen: datetime
    last_seen: datetime
    count: int

    @classmethod
    def of(cls, o: EdgeObservation) -> Evidence:
        return cls(source=o.source, first_seen=o.first_seen, last_seen=o.last_seen, count=o.count)


@strawberry.type
class GraphNode:
    id: strawberry.ID
    type: str
    value: str
    status: IdentifierStatus
    one_id: strawberry.ID | None
    first_seen: datetime
    last_seen: datetime


@strawberry.type
class GraphEdge:
    source: strawberry.ID = strawberry.field(description="Id of one end node.")
    target: strawberry.ID = strawberry.field(description="Id of the other end node.")
    evidence: list[Evidence]


@strawberry.type(description="A customer's identifiers and evidence links, ready to draw.")
class IdentityGraph:
    one_id: strawberry.ID
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    @classmethod
    def of(cls, g: CustomerGraph) -> IdentityGraph:
        def node_id(key: Key) -> strawberry.ID:
            return strawberry.ID(f"{key[0]}:{key[1]}")

        edges: dict[tuple[Key, Key], list[Evidence]] = {}
        for o in g.edges:
            edges.setdefault((o.a, o.b), []).append(Evidence.of(o))
        return cls(
            one_id=strawberry.ID(g.one_id),
            nodes=[
                GraphNode(
                    id=node_id(n.key),
                    type=n.key[0],
                    value=n.key[1],
                    status=IdentifierStatus(n.status),
                    one_id=strawberry.ID(n.one_id) if n.one_id else None,
                    first_seen=n.first_seen,
                    last_seen=n.last_seen,
                )
                for n in g.nodes
            ],
            edges=[
                GraphEdge(source=node_id(a), target=node_id(b), evidence=ev)
                for (a, b), ev in edges.items()
            ],
        )


@strawberry.enum
class LinkReason(Enum):
    SAME_CUSTOMER = "SAME_CUSTOMER"
    DIFFERENT_CUSTOMERS = "DIFFERENT_CUSTOMERS"
    LIMIT = "LIMIT"
    SHARED = "SHARED"
    BLOCKED = "BLOCKED"
    INVALID = "INVALID"
    UNKNOWN = "UNKNOWN"


@strawberry.type
class LinkStep:
    a: IdentifierRef
    b: IdentifierRef
    evidence: list[Evidence]


@strawberry.type(description="Why two identifiers are, or are not, one customer.")
class LinkExplanation:
    joined: bool
    reason: LinkReason
    message: str
    one_id_a: strawberry.ID | None
    one_id_b: strawberry.ID | None
    path: list[LinkStep]
    via: list[IdentifierRef]
    limit_type: str | None

    @classmethod
    def of(cls, e: Explanation) -> LinkExplanation:
        return cls(
            joined=e.joined,
            reason=LinkReason(e.reason),
            message=e.message,
            one_id_a=strawberry.ID(e.one_id_a) if e.one_id_a else None,
            one_id_b=strawberry.ID(e.one_id_b) if e.one_id_b else None,
            path=[
                LinkStep(
                    a=IdentifierRef.of(s.a),
                    b=IdentifierRef.of(s.b),
                    evidence=[Evidence.of(o) for o in s.observations],
                )
                for s in e.path
            ],
            via=[IdentifierRef.of(k) for k in e.via],
            limit_type=e.limit_type,
        )


@strawberry.type
class RemoveIdentifierResult:
    removed: IdentifierRef
    one_ids: list[strawberry.ID] = strawberry.field(
        description="OneIDs of the customers that held the identifier's neighbours afterwards."
    )
