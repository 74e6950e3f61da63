"""The strawberry schema: queries and mutations over the identity graph."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.types.execution import ExecutionContext

from graph.errors import IdgraphError
from service.schema.mutations import Mutation
from service.schema.queries import Query

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


schema = IdgraphSchema(query=Query, mutation=Mutation)


def sdl() -> str:
    return schema.as_str() + "\n"
