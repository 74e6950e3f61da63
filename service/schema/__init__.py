"""The strawberry schema: queries and mutations over the identity graph."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types.execution import ExecutionContext

from graph.errors import IdgraphError
from service.schema.mutations import Mutation
from service.schema.queries import Query
from service.schema.types import IdentityEventInput

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


# The endpoint has parsed and validated each document already; the caches keep
# execute from doing it again for the same query text.
schema = IdgraphSchema(
    query=Query,
    mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)


def _convert_ingest_arguments_cheaply(built: strawberry.Schema) -> None:
    """Let ingestEvents take graphql-core's coerced arguments as they are.

    graphql-core has already coerced and validated the events against
    IdentityEventInput; strawberry's generic argument conversion then walks every
    field of every event again with type introspection, about 250 microseconds an
    event, half of the cost of an ingest. The field keeps its schema; only the
    Python objects are built directly, and the same resolver runs.
    """
    field = built._schema.mutation_type.fields["ingestEvents"]  # type: ignore[union-attr]

    async def resolve(root: Any, info: Any, events: list[dict[str, Any]]) -> Any:
        return await Mutation.ingest_events(
            root, info, [IdentityEventInput.from_coerced(e) for e in events]
        )

    field.resolve = resolve


_convert_ingest_arguments_cheaply(schema)


def sdl() -> str:
    return schema.as_str() + "\n"
