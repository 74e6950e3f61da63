"""Shared fixtures: a whole service per test on a temporary data dir, driven over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.config import load_config
from graph.store.embedded import EmbeddedStore
from graph.store.protocol import GraphStore
from service.app import create_app
from service.settings import Settings

KEY = "test-admin-key"

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


def make_settings(data_dir: Path, config: Path | None = None) -> Settings:
    return Settings(data_dir=data_dir, config_path=config, admin_key=KEY)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings)) as client:
        yield Api(client)


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Builds services on demand, e.g. with a config file, and closes them after the test."""
    clients: list[TestClient] = []

    def build(config_text: str | None = None, data_dir: Path | None = None) -> Api:
        config = None
        if config_text is not None:
            config = tmp_path / f"config-{len(clients)}.toml"
            config.write_text(config_text, "utf-8")
        settings = make_settings(data_dir or tmp_path / f"data-{len(clients)}", config)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Api(client)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


STORES = ["embedded"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """Every store implementation, for the store contract tests."""
    if request.param == "embedded":
        opened: GraphStore = EmbeddedStore(tmp_path / "store")
    else:  # pragma: no cover - a new store is added here
        raise AssertionError(request.param)
    yield opened
    opened.close()


@pytest.fixture
def config_default() -> Any:
    return load_config()
