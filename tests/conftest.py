"""Shared fixtures: a whole service per test on a temporary data dir, driven over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neo4j
import pytest
from starlette.testclient import TestClient

from graph.config import load_config
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore
from service.app import create_app
from service.settings import Settings
from tests.local_neo4j import launcher

KEY = "test-admin-key"
STORES = ["embedded", "neo4j"]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # what tags see as now, until a test moves it

INGEST = """
mutation Ingest($events: [IdentityEventInput!]!) {
  ingestEvents(events: $events) {
    accepted rejected duplicates
    results { index eventId oneId status warnings errorCode errorMessage }
  }
}
"""

RESOLVE = """
query Resolve($ids: [IdentifierInput!]!) {
  resolveIdentifiers(identifiers: $ids) { type value normalized oneId status reason }
}
"""


class Api:
    """A GraphQL client for one test service."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        key: str | None = KEY,
        **headers: str,
    ) -> Any:
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        sent.update(headers)
        return self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=sent
        )

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an operation that must succeed; returns ``data``."""
        response = self.post(query, variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def errors(self, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        body = self.post(query, variables).json()
        assert body.get("errors"), body
        errors: list[dict[str, Any]] = body["errors"]
        return errors

    def ingest(self, *events: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self(INGEST, {"events": list(events)})["ingestEvents"]
        return result

    def one_id(self, type_: str, value: str) -> str | None:
        found = self(RESOLVE, {"ids": [{"type": type_, "value": value}]})
        one_id: str | None = found["resolveIdentifiers"][0]["oneId"]
        return one_id

    def status(self, type_: str, value: str) -> str:
        found = self(RESOLVE, {"ids": [{"type": type_, "value": value}]})
        status: str = found["resolveIdentifiers"][0]["status"]
        return status


def event(
    event_id: str | None,
    source: str,
    *ids: tuple[str, str],
    timestamp: str | None = None,
    **traits: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": event_id,
        "source": source,
        "identifiers": [{"type": t, "value": v} for t, v in ids],
    }
    if timestamp:
        body["timestamp"] = timestamp
    if traits:
        body["traits"] = traits
    return body


def make_settings(
    data_dir: Path, config: Path | None = None, neo4j_uri: str | None = None
) -> Settings:
    return Settings(data_dir=data_dir, config_path=config, admin_key=KEY, neo4j_uri=neo4j_uri)


@pytest.fixture(params=STORES)
def store_uri(request: pytest.FixtureRequest) -> str | None:
    """The API suite runs on every store: None is the embedded one, else a Neo4j URI."""
    if request.param == "embedded":
        return None
    uri: str = request.getfixturevalue("neo4j_uri")
    empty_neo4j(uri)
    return uri


@pytest.fixture
def settings(tmp_path: Path, store_uri: str | None) -> Settings:
    return make_settings(tmp_path / "data", neo4j_uri=store_uri)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings)) as client:
        yield Api(client)


@pytest.fixture
def make_api(tmp_path: Path, store_uri: str | None) -> Iterator[Callable[..., Api]]:
    """Builds services on demand, e.g. with a config file, and closes them after the test."""
    clients: list[TestClient] = []

    def build(config_text: str | None = None, data_dir: Path | None = None) -> Api:
        config = None
        if config_text is not None:
            config = tmp_path / f"config-{len(clients)}.toml"
            config.write_text(config_text, "utf-8")
        settings = make_settings(
            data_dir or tmp_path / f"data-{len(clients)}", config, neo4j_uri=store_uri
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Api(client)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def neo4j_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Neo4j: the one ``make test`` started, else one started for this session.

    It fails, never skips, when Neo4j cannot start: the Neo4j store is tested
    on every run.
    """
    given = os.environ.get("IDGRAPH_TEST_NEO4J_URI")
    if given:
        yield given
        return
    scratch = tmp_path_factory.mktemp("neo4j")
    port = launcher.free_port()
    try:
        process = launcher.start(scratch / "data", port, scratch / "neo4j.log")
    except launcher.Neo4jFailed as exc:
        pytest.fail(f"Neo4j could not start for the Neo4j store tests: {exc}", pytrace=False)
    yield f"bolt://127.0.0.1:{port}"
    launcher.stop(process)


def empty_neo4j(uri: str) -> None:
    """Tests share one database (Community has one): each starts from an empty graph."""
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver, driver.session() as session:
        # In transactions of their own: a database left large by a benchmark run beside
        # the tests would not fit in one.
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """Every store implementation, for the store contract tests."""
    opened: GraphStore
    if request.param == "embedded":
        opened = EmbeddedStore(tmp_path / "store")
    else:
        uri = request.getfixturevalue("neo4j_uri")
        empty_neo4j(uri)
        opened = Neo4jStore(uri)
    yield opened
    opened.close()


@pytest.fixture
def config_default() -> Any:
    return load_config()


class Clock:
    """The time tags see; a test moves it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tagged(tmp_path: Path, store_uri: str | None, clock: Clock) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", admin_key=KEY, neo4j_uri=store_uri, clock=clock)
    with TestClient(create_app(settings)) as client:
        yield Api(client)
