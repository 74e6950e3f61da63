"""Tag definitions, a profile's tags with why, their history, and the tag mutations.

A tag's value is read as stored (decided when its customer last changed);
its explanation is made on read, from the customer's rollup at that moment.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.scalars import JSON

from graph.identity_graph import IdentityGraph as Core
from graph.tags.definitions import is_segment, parse_definition
from graph.tags.models import CustomerTag, StoredDefinition
from graph.tags.models import TagChange as CoreTagChange
from service.reads import read

if TYPE_CHECKING:
    from service.schema.types import Profile


@strawberry.enum(description="How a tag is decided.")
class TagKind(Enum):
    MANUAL = "MANUAL"
    RULE = "RULE"
    LABELLED = "LABELLED"
    VALUE = "VALUE"
    RFM = "RFM"


@strawberry.enum(description="BUILDING while a new or changed definition is applied to everyone.")
class TagStatus(Enum):
    BUILDING = "BUILDING"
    READY = "READY"


@strawberry.enum(description="Who put a tag on a customer: a person, or its rule.")
class TagSource(Enum):
    MANUAL = "MANUAL"
    RULE = "RULE"


@strawberry.type(description="A tag: what it is called and the rule, as JSON, that decides it.")
class TagDefinition:
    id: strawberry.ID
    name: str
    category: str
    description: str
    kind: TagKind
    version: int
    status: TagStatus
    progress: float = strawberry.field(description="Share of customers done while BUILDING.")
    changed_at: datetime
    when: JSON | None
    cases: JSON | None
    otherwise: JSON | None
    compute: JSON | None
    rfm: JSON | None = strawberry.field(
        description="For an RFM tag: the score it holds, the settings and the bins in force."
    )

    @classmethod
    def of(cls, s: StoredDefinition) -> TagDefinition:
        d = s.definition
        return cls(
            id=strawberry.ID(d.id),
            name=d.name,
            category=d.category,
            description=d.description,
            kind=TagKind(d.kind.value),
            version=s.version,
            status=TagStatus(s.status.value),
            progress=s.progress,
            changed_at=s.changed_at,
            when=d.given.get("when"),
            cases=d.given.get("cases"),
            otherwise=d.given.get("otherwise"),
            compute=d.given.get("compute"),
            rfm=d.given.get("rfm"),
        )


@strawberry.type(description="A tag a customer has: its value, since when, and why.")
class ProfileTag:
    tag: TagDefinition
    value: JSON
    since: datetime
    source: TagSource
    added_by: str | None = strawberry.field(description="Who added a manual tag, if told.")
    explanation: JSON = strawberry.field(
        description="The rule's condition tree with, at each leaf, the value seen and whether"
        " it held; for a manual tag, who added it and when."
    )


@strawberry.type(description="One change of a customer's tag, and what caused it.")
class TagChange:
    one_id: strawberry.ID
    tag_id: strawberry.ID
    before: JSON | None = strawberry.field(description="null: the customer did not have it.")
    after: JSON | None = strawberry.field(description="null: the customer no longer has it.")
    at: datetime
    cause: JSON = strawberry.field(
        description="kind EVENT (with eventId), MERGE, SPLIT, TIME, DEFINITION, MANUAL (with"
        " by), ACCOUNT (a link to accounts changed, with accountIds) or RETAG."
    )

    @classmethod
    def of(cls, c: CoreTagChange) -> TagChange:
        return cls(
            one_id=strawberry.ID(c.one_id),
            tag_id=strawberry.ID(c.tag_id),
            before=c.before,
            after=c.after,
            at=c.at,
            cause=c.cause,
        )


@strawberry.input(description="A tag definition: a manual tag has none of when, cases, compute.")
class TagDefinitionInput:
    id: strawberry.ID
    name: str
    category: str = strawberry.field(
        description="BASIC, BEHAVIOR, PREFERENCE, VALUE or a word of your own."
    )
    description: str | None = None
    when: JSON | None = strawberry.field(default=None, description="A condition: a boolean tag.")
    cases: JSON | None = strawberry.field(
        default=None, description="[{value, when}, ...]: the first case that holds gives the value."
    )
    otherwise: JSON | None = strawberry.field(
        default=None, description="The value when no case holds."
    )
    compute: JSON | None = strawberry.field(
        default=None, description="An aggregate whose value is the tag's."
    )


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


def _profile_tags(graph: Core, one_id: str) -> list[ProfileTag]:
    stored = graph.tags.definitions()
    by_id = {s.definition.id: s for s in stored}
    held = graph.store.tag_store.customer_tags([one_id]).get(one_id, {})
    if not held:
        return []
    explained = graph.tags.explain(one_id)
    return [
        _profile_tag(by_id[tag_id], tag, explained.get(tag_id))
        for tag_id, tag in sorted(held.items())
        if tag_id in by_id and not is_segment(tag_id)  # a segment's members are its own
    ]


def _profile_tag(stored: StoredDefinition, tag: CustomerTag, explained: Any) -> ProfileTag:
    if tag.source.value == "MANUAL":
        explanation: Any = {"manual": {"by": tag.by, "at": tag.since.isoformat()}}
    else:
        explanation = None if explained is None else explained.explanation
    return ProfileTag(
        tag=TagDefinition.of(stored),
        value=tag.value,
        since=tag.since,
        source=TagSource(tag.source.value),
        added_by=tag.by,
        explanation=explanation if explanation is not None else {},
    )


async def profile_tags(info: strawberry.Info, profile: Profile) -> list[ProfileTag]:
    graph = _graph(info)
    return await read(graph, _profile_tags, graph, str(profile.one_id))


async def profile_tag(info: strawberry.Info, profile: Profile, tag_id: str) -> ProfileTag | None:
    found = await profile_tags(info, profile)
    return next((t for t in found if t.tag.id == tag_id), None)


async def profile_tag_history(
    info: strawberry.Info, profile: Profile, tag_id: str | None
) -> list[TagChange]:
    graph = _graph(info)
    names = [str(profile.one_id), *map(str, profile.aliases)]
    found = await read(graph, graph.tags.history, names, tag_id)
    return [TagChange.of(c) for c in found]


@strawberry.type
class TagQueries:
    @strawberry.field(description="Every tag definition, by id.")
    async def tag_definitions(self, info: strawberry.Info) -> list[TagDefinition]:
        graph = _graph(info)
        found = await read(graph, graph.tags.definitions)
        return [TagDefinition.of(s) for s in found if not is_segment(s.definition.id)]

    @strawberry.field(description="One tag definition, or null.")
    async def tag_definition(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> TagDefinition | None:
        graph = _graph(info)
        found = await read(graph, graph.tags.definition, str(id))
        if found is None or is_segment(found.definition.id):
            return None
        return TagDefinition.of(found)


@strawberry.type
class TagMutations:
    @strawberry.mutation(
        description="Create or change a tag definition (INVALID_RULE with the JSON path of the"
        " bad part, TAG_CYCLE); it is applied to every customer in the background."
    )
    async def define_tag(self, info: strawberry.Info, input: TagDefinitionInput) -> TagDefinition:
        definition = parse_definition(
            str(input.id),
            input.name,
            input.category,
            input.description,
            input.when,
            input.cases,
            input.otherwise,
            input.compute,
        )
        stored = _graph(info).tags.define(definition)
        _wake(info)
        return TagDefinition.of(stored)

    @strawberry.mutation(description="Delete a tag definition and the tag from every customer.")
    async def delete_tag(self, info: strawberry.Info, id: strawberry.ID) -> TagDefinition:
        return TagDefinition.of(_graph(info).tags.delete(str(id)))

    @strawberry.mutation(description="Put a MANUAL tag on a customer; `by` says who did.")
    async def add_tag(
        self,
        info: strawberry.Info,
        one_id: strawberry.ID,
        tag_id: strawberry.ID,
        by: str | None = None,
    ) -> list[ProfileTag]:
        return _set_manual(info, str(one_id), str(tag_id), True, by)

    @strawberry.mutation(description="Take a MANUAL tag off a customer; `by` says who did.")
    async def remove_tag(
        self,
        info: strawberry.Info,
        one_id: strawberry.ID,
        tag_id: strawberry.ID,
        by: str | None = None,
    ) -> list[ProfileTag]:
        return _set_manual(info, str(one_id), str(tag_id), False, by)


def _set_manual(
    info: strawberry.Info, one_id: str, tag_id: str, present: bool, by: str | None
) -> list[ProfileTag]:
    """The customer's tags once a manual tag is put on or taken off."""
    graph = _graph(info)
    return _profile_tags(graph, graph.tags.set_manual(one_id, tag_id, present, by))


def _wake(info: strawberry.Info) -> None:
    """Tell the background tag job a definition is waiting to be built."""
    wake = info.context.get("wake_tags")
    if wake is not None:
        wake()
