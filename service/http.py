"""GraphQL over HTTP, following the GraphQL-over-HTTP spec.

Written on starlette rather than taken from strawberry's view because the spec
asks for ``application/graphql-response+json`` with 4xx statuses on request
errors, and the API maps every error to ``extensions.code`` in exactly one
place: here.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from strawberry.execution.is_awaitable import optimized_is_awaitable

from graph import jsontext
from graph.errors import IdgraphError
from graph.identity_graph import IdentityGraph
from service.auth import authorized
from service.loaders import Loaders
from service.pacing import WRITE_SCOPE_KEY, LoopWriter, ReadsFirst, WritePool
from service.schema import schema

log = logging.getLogger("idgraph.http")

JSON_TYPE = "application/json"
GRAPHQL_RESPONSE_TYPE = "application/graphql-response+json"
MAX_BODY_BYTES = 32 * 1024 * 1024
LARGE_BODY_BYTES = 64 * 1024


class RequestError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _media_types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


def negotiate(accept: str | None) -> str:
    """Pick the response media type; a missing Accept means application/json."""
    if not accept:
        return JSON_TYPE
    wanted = _media_types(accept)
    if GRAPHQL_RESPONSE_TYPE in wanted:
        return GRAPHQL_RESPONSE_TYPE
    if JSON_TYPE in wanted or "*/*" in wanted or "application/*" in wanted:
        return JSON_TYPE
    raise RequestError(
        406, "NOT_ACCEPTABLE", f"cannot answer with any of: {accept}; use {GRAPHQL_RESPONSE_TYPE}"
    )


# Keys that are not strings are written as ``json`` writes them; what orjson
# would write its own way (datetimes, dataclasses) goes to ``default``
# (``str``), as with ``json``. Subclasses of dict, list, str and int are
# written as their base types, by both.
_LIKE_JSON_MODULE = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def encoded(body: dict[str, Any]) -> bytes:
    """``body`` as UTF-8 JSON; orjson's speed, ``json``'s output for what orjson refuses.

    Every response is encoded on the event loop: orjson takes 3 µs for a
    profile and 8 µs for a hundred resolved identifiers, ``json`` 22 and 57.
    """
    try:
        return orjson.dumps(body, default=str, option=_LIKE_JSON_MODULE)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate
        # A lone surrogate (a rejected event's id, say) has no UTF-8 bytes; it can
        # only stand inside a JSON string, where "\ud800" is its escape.
        text = json.dumps(body, ensure_ascii=False, default=str)
        return text.encode("utf-8", "backslashreplace")


def respond(
    body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encoded(body),
        status_code=status,
        media_type=f"{media_type}; charset=utf-8",
        headers=headers,
    )


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def format_error(error: GraphQLError) -> dict[str, Any]:
    """Every error leaves here with a stable ``extensions.code``."""
    formatted: dict[str, Any] = error.formatted
    original = error.original_error
    extensions = dict(formatted.get("extensions") or {})
    if isinstance(original, IdgraphError):
        extensions["code"] = original.code
        if original.details:
            extensions["details"] = original.details
        formatted["message"] = original.message
    elif original is not None and error.path:
        extensions["code"] = "INTERNAL_ERROR"
        formatted["message"] = "internal error; see the server log"
    else:
        # No path: the request itself was wrong (variables that do not coerce).
        extensions.setdefault("code", "BAD_USER_INPUT")
    formatted["extensions"] = extensions
    return formatted


def _params(request_body: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    if not isinstance(request_body, dict):
        raise RequestError(400, "BAD_REQUEST", "the request body must be a JSON object")
    query = request_body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "BAD_REQUEST", "'query' must be a non-empty string")
    variables = request_body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "BAD_REQUEST", "'variables' must be an object or null")
    operation = request_body.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise RequestError(400, "BAD_REQUEST", "'operationName' must be a string or null")
    extensions = request_body.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "BAD_REQUEST", "'extensions' must be an object or null")
    return query, variables, operation


async def _read_params(request: Request) -> tuple[str, dict[str, Any] | None, str | None]:
    if request.method == "GET":
        raw: dict[str, Any] = dict(request.query_params)
        for name in ("variables", "extensions"):
            if raw.get(name):
                try:
                    raw[name] = json.loads(raw[name])
                except json.JSONDecodeError as exc:
                    raise RequestError(400, "BAD_REQUEST", f"'{name}' is not JSON: {exc}") from exc
            else:
                raw.pop(name, None)
        return _params(raw)
    content_type = request.headers.get("content-type")
    if not content_type:
        raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", "send Content-Type: application/json")
    media = content_type.split(";")[0].strip().lower()
    if media != JSON_TYPE:
        raise RequestError(
            415, "UNSUPPORTED_MEDIA_TYPE", f"unsupported Content-Type {media}; send {JSON_TYPE}"
        )
    raw_body = bytearray()
    async for chunk in request.stream():
        raw_body += chunk
        if len(raw_body) > MAX_BODY_BYTES:
            raise RequestError(
                413,
                "PAYLOAD_TOO_LARGE",
                f"request bodies are limited to {MAX_BODY_BYTES // (1024 * 1024)} MiB; "
                "send smaller batches",
            )
    try:
        if len(raw_body) > LARGE_BODY_BYTES:  # a batch of events: decoded off the event loop
            body = await run_in_threadpool(jsontext.loads, bytes(raw_body))
        else:
            body = jsontext.loads(bytes(raw_body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "BAD_JSON", f"the request body is not valid JSON: {exc}") from exc
    return _params(body)


@lru_cache(maxsize=256)
def checked(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
    """Parse and validate once per distinct query: clients send the same few over and over."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (exc,)
    return document, tuple(validate(schema._schema, document))


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


async def _execute(
    document: DocumentNode,
    variables: dict[str, Any] | None,
    context: dict[str, Any],
    operation_name: str | None,
) -> ExecutionResult:
    """Execute a checked document with graphql-core, on the schema strawberry built.

    The document comes parsed and validated from ``checked``: strawberry's own
    ``execute`` would look both up again (hashing the whole document to find
    its validation) and run its extension hooks around each step, a tenth of
    what a profile read costs, for nothing this service uses.
    """
    result = execute(
        schema._schema,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        executor_class=schema.execution_context_class,
        is_awaitable=optimized_is_awaitable,
    )
    if inspect.isawaitable(result):
        result = await result
    if result.errors:
        schema.process_errors(result.errors)
    return result


async def execute_request(
    request: Request,
    graph: IdentityGraph,
    admin_key: str,
    reads_first: ReadsFirst,
    writes: LoopWriter | WritePool,
    wake_tags: Callable[[], None] | None = None,
) -> Response:
    try:
        media_type = negotiate(request.headers.get("accept"))
    except RequestError as exc:
        return respond(error_body(exc.code, exc.message), exc.status, JSON_TYPE)
    if not authorized(request, admin_key):
        return respond(
            error_body("UNAUTHENTICATED", "missing or wrong API key; send Authorization: Bearer"),
            401,
            media_type,
            {"WWW-Authenticate": 'Bearer realm="idgraph"'},
        )
    request_error_status = 400 if media_type == GRAPHQL_RESPONSE_TYPE else 200
    try:
        query, variables, operation_name = await _read_params(request)
        document, problems = checked(query)
        if document is None:
            body = {
                "errors": [
                    {**e.formatted, "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}
                    for e in problems
                ]
            }
            return respond(body, request_error_status, media_type)
        if problems:
            body = {
                "errors": [
                    {**e.formatted, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
                    for e in problems
                ]
            }
            return respond(body, request_error_status, media_type)
        operation = _operation(document, operation_name)
        if (
            request.method == "GET"
            and operation is not None
            and (operation.operation is not OperationType.QUERY)
        ):
            raise RequestError(405, "METHOD_NOT_ALLOWED", "mutations need POST", {"Allow": "POST"})
    except RequestError as exc:
        return respond(error_body(exc.code, exc.message), exc.status, media_type, exc.headers)
    context = {
        "graph": graph,
        "loaders": Loaders(graph),
        "request": request,
        "wake_tags": wake_tags,
    }
    if operation is not None and operation.operation is OperationType.MUTATION:
        request.scope[WRITE_SCOPE_KEY] = True
        with reads_first.writing():
            result = await writes.run_coroutine(
                lambda: _execute(document, variables, context, operation_name)
            )
    else:
        result = await _execute(document, variables, context, operation_name)
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    if result.data is None and result.errors and all(not e.path for e in result.errors):
        # A request error (variable coercion, unknown operation): no execution began.
        return respond(body, request_error_status, media_type)
    body["data"] = result.data
    return respond(body, 200, media_type)
