"""The API's short execution paths answer exactly as graphql-core's own path does.

Each request is sent twice over HTTP, once as served and once with the
schema executing through strawberry's unmodified execution context; the two
responses, errors and all, must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    graphql_sync,
)
from graphql.language.parser import MAX_NESTING_DEPTH
from starlette.testclient import TestClient
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from service.app import create_app
from service.schema import schema
from tests.conftest import KEY, Api, event, make_settings

RESOLVE = """
query R($ids: [IdentifierInput!]!) {
  resolveIdentifiers(identifiers: $ids) {
    __typename kind: type value normalized oneId status reason
    ... on IdentifierResolution { again: status }
    skipped: value @skip(if: true)
  }
}
"""
NESTED = """
query R($ids: [IdentifierInput!]!) {
  resolveIdentifiers(identifiers: $ids) {
    status profile { oneId identifiers { type identifiers { value } } }
  }
}
"""
PROFILE = """
query P($t: String!, $v: String!) {
  profileByIdentifier(type: $t, value: $v) {
    oneId eventCount traitValues identifiers { type identifiers { __typename value } }
  }
}
"""
WHOLE = """
query P($t: String!, $v: String!) {
  profileByIdentifier(type: $t, value: $v) {
    __typename oneId firstSeen lastSeen sources eventCount aliases traitValues
    traits { name value source observedAt }
    identifiers { type identifiers { value } }
    history { kind oneId others at reason eventIds evidence }
    tags { tag { id name } value since source }
  }
}
"""
GOOD = [
    {"type": "email", "value": "Ann@Example.com"},
    {"type": "email", "value": "nobody@example.com"},
    {"type": "phone", "value": "not a phone"},
    {"type": "loyalty_id", "value": "L-1"},
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        served = Api(client)
        served.ingest(
            event("e1", "web", ("email", "ann@example.com"), ("phone", "+8613800138000")),
            event("e2", "crm", ("email", "ann@example.com"), ("crm_id", "C-9"), tier="gold"),
        )
        yield served


def both(api: Api, monkeypatch: pytest.MonkeyPatch, query: str, variables: Any) -> Any:
    """The response as served, after checking graphql-core's own path gives the same."""
    served = api.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    with monkeypatch.context() as plain:
        plain.setattr(schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext)
        reference = api.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert (served.status_code, served.json()) == (reference.status_code, reference.json())
    return served.json()


def test_a_batch_of_resolutions_is_answered_as_graphql_core_would(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = both(api, monkeypatch, RESOLVE, {"ids": GOOD})
    rows = body["data"]["resolveIdentifiers"]
    assert [r["__typename"] for r in rows] == ["IdentifierResolution"] * 4
    assert list(rows[0]) == [
        "__typename",
        "kind",
        "value",
        "normalized",
        "oneId",
        "status",
        "reason",
        "again",
    ]
    assert rows[0]["oneId"] is not None and rows[1]["oneId"] is None
    assert [r["status"] for r in rows] == [r["again"] for r in rows]


@pytest.mark.parametrize(
    "ids",
    [
        [*GOOD, {"type": "email"}],  # a required field missing
        [*GOOD, {"type": "email", "value": "a@b.c", "extra": 1}],  # a field the type lacks
        [*GOOD, {"type": "email", "value": 42}],  # not a string
        [*GOOD, {"type": "email", "value": None}],  # null where the type says non-null
        [*GOOD, None],  # a null item in a list of non-null items
        [*GOOD, "email:a@b.c"],  # not an object
        {"type": "email", "value": "ann@example.com"},  # one object: a list of one
        [],
        None,
    ],
)
def test_identifiers_that_do_not_coerce_plainly_are_graphql_cores_to_judge(
    api: Api, monkeypatch: pytest.MonkeyPatch, ids: Any
) -> None:
    both(api, monkeypatch, RESOLVE, {"ids": ids})


def test_lists_of_objects_with_objects_inside_take_the_full_path(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = both(api, monkeypatch, NESTED, {"ids": GOOD})
    assert body["data"]["resolveIdentifiers"][0]["profile"]["oneId"]
    body = both(api, monkeypatch, PROFILE, {"t": "crm_id", "v": "C-9"})
    groups = body["data"]["profileByIdentifier"]["identifiers"]
    assert {g["type"] for g in groups} == {"email", "phone", "crm_id"}


def test_a_whole_profile_is_answered_as_graphql_core_would(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.ingest(event("e0", "app", ("device_id", "dev-000001")))  # a customer of its own, merged
    api.ingest(event("e3", "app", ("crm_id", "C-9"), ("device_id", "dev-000001"), city="Shanghai"))
    profile = both(api, monkeypatch, WHOLE, {"t": "device_id", "v": "dev-000001"})
    assert "data" in profile, profile
    profile = profile["data"]["profileByIdentifier"]
    assert profile["eventCount"] == 4 and profile["sources"]
    assert profile["traitValues"]["tier"] == "gold"
    assert {t["name"] for t in profile["traits"]} >= {"tier", "city"}
    assert profile["history"]


def test_identifiers_written_in_the_query_are_coerced_as_before(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = (
        'query R($v: String!) { resolveIdentifiers(identifiers: [{type: "email", value: $v}])'
        " { oneId status } }"
    )
    body = both(api, monkeypatch, query, {"v": "ann@example.com"})
    assert body["data"]["resolveIdentifiers"][0]["status"] == "LINKED"


def _echo_schema() -> GraphQLSchema:
    """A schema with an input type that can hold itself, and one that cannot."""
    chain = GraphQLInputObjectType(
        "Chain", lambda: {"next": GraphQLInputField(chain), "v": GraphQLInputField(GraphQLString)}
    )
    pair = GraphQLInputObjectType(
        "Pair", {"a": GraphQLInputField(GraphQLString), "b": GraphQLInputField(GraphQLString)}
    )
    echo = GraphQLField(
        GraphQLString,
        args={"chain": GraphQLArgument(chain), "pairs": GraphQLArgument(GraphQLList(pair))},
        resolve=lambda _root, _info, **args: "ok",
    )
    return GraphQLSchema(GraphQLObjectType("Query", {"echo": echo}))


def _deep_chain(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"v": "end"}
    for _ in range(depth):
        value = {"next": value}
    return value


def test_a_value_nested_past_the_limit_is_still_refused() -> None:
    """The nesting walk (graphql-core's, as the API's schema module leaves it) is skipped only
    for types that cannot nest past the limit."""
    result = graphql_sync(
        _echo_schema(),
        "query Q($c: Chain) { echo(chain: $c) }",
        variable_values={"c": _deep_chain(MAX_NESTING_DEPTH + 10)},
    )
    assert result.data is None
    assert result.errors is not None
    assert "nested too deeply" in result.errors[0].message


def test_values_of_bounded_types_coerce_as_before() -> None:
    schema_ = _echo_schema()
    shallow = graphql_sync(
        schema_,
        "query Q($c: Chain, $p: [Pair]) { echo(chain: $c, pairs: $p) }",
        variable_values={"c": _deep_chain(3), "p": [{"a": "x", "b": "y"}] * 1000},
    )
    assert shallow.errors is None
    assert shallow.data == {"echo": "ok"}
    wrong = graphql_sync(
        schema_,
        "query Q($p: [Pair]) { echo(pairs: $p) }",
        variable_values={"p": [{"a": "x", "c": "y"}]},
    )
    assert wrong.errors is not None
    assert "not to include unknown field 'c'" in wrong.errors[0].message
