"""The strawberry schema: queries and mutations over the identity graph."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import strawberry
from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    is_leaf_type,
)
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.execution import ExecutionContext

from graph.errors import IdgraphError
from graph.pacing import every_few, step_aside
from service.schema.execution import Execution
from service.schema.mutations import Mutation
from service.schema.queries import Query
from service.schema.types import IdentifierInput, IdentityEventInput

log = logging.getLogger("idgraph.api")


class IdgraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is unexpected; typed errors are the caller's, not ours."""
        for error in errors:
            original = error.original_error
            if error.path and original is not None and not isinstance(original, IdgraphError):
                log.error("unexpected error", exc_info=original)


schema = IdgraphSchema(query=Query, mutation=Mutation, execution_context_class=Execution)


def _convert_arguments_cheaply(built: strawberry.Schema) -> None:
    """Let ingestEvents and resolveIdentifiers take graphql-core's coerced arguments as they are.

    graphql-core has already coerced and validated the events and identifiers
    against their input types; strawberry's generic argument conversion then
    walks every field of every item again with type introspection (about 250
    microseconds an event, 4 an identifier): half of what an ingest costs, a
    third of what resolving a hundred identifiers does. The fields keep their
    schema; only the Python objects are built directly, and the same
    resolvers run.
    """
    fields = built._schema.query_type.fields  # type: ignore[union-attr]
    mutations = built._schema.mutation_type.fields  # type: ignore[union-attr]

    async def ingest(root: Any, info: Any, events: list[dict[str, Any]]) -> Any:
        return await Mutation.ingest_events(
            root, info, [IdentityEventInput.from_coerced(e) for e in every_few(events, 16)]
        )

    async def resolve(root: Any, info: Any, identifiers: list[dict[str, str]]) -> Any:
        return await Query.resolve_identifiers(
            root, info, [IdentifierInput(type=i["type"], value=i["value"]) for i in identifiers]
        )

    mutations["ingestEvents"].resolve = ingest
    fields["resolveIdentifiers"].resolve = resolve


def _coerce_events_stepping_aside(built: strawberry.Schema) -> None:
    """Coercing a batch's events is a fifth of a write's work: let it step aside too.

    graphql-core hands each coerced input object to its type's ``out_type``;
    for an event that is a point where the write may step aside for reads
    (``graph.pacing``), then the value as is.
    """
    event_type = cast(GraphQLInputObjectType, built._schema.type_map["IdentityEventInput"])

    def paced(value: dict[str, Any]) -> dict[str, Any]:
        step_aside()
        return value

    event_type.out_type = paced  # type: ignore[method-assign]


def _read_plain_fields_directly(built: strawberry.Schema) -> None:
    """Let graphql-core read a plain data field straight from its object.

    Strawberry resolves every field through a wrapper of its own (an Info
    object built, the field's type and name looked up again) even when the
    field is an attribute: that was most of the time spent completing a
    hundred resolutions or a profile's identifiers. A field with a resolver,
    permissions or extensions keeps strawberry's path; the others return the
    same attribute strawberry would, serialized by the same types.
    """
    names = built.config.name_converter
    for concrete in built.schema_converter.type_map.values():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition) or definition.is_input:
            continue
        graphql_fields = cast(GraphQLObjectType, concrete.implementation).fields
        for field in definition.fields:
            if field.base_resolver is not None or field.permission_classes or field.extensions:
                continue
            graphql_field = graphql_fields.get(names.get_graphql_name(field))
            if graphql_field is None:  # a private attribute, not in the schema
                continue
            kind = graphql_field.type
            kind = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
            leaf = kind if is_leaf_type(kind) else None
            graphql_field.resolve = _attribute(field.python_name, cast(GraphQLLeafType, leaf))


def _attribute(name: str, leaf: GraphQLLeafType | None) -> Callable[[Any, Any], Any]:
    def resolve(source: Any, info: Any) -> Any:
        return getattr(source, name)

    resolve.attribute = name  # type: ignore[attr-defined]
    resolve.leaf = leaf  # type: ignore[attr-defined]
    return resolve


_convert_arguments_cheaply(schema)
_read_plain_fields_directly(schema)
_coerce_events_stepping_aside(schema)


def sdl() -> str:
    return schema.as_str() + "\n"
