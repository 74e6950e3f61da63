"""Behavioural events: what happened and its facts, kept beside the identity evidence."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from graph.models import Key
from service.app import create_app
from service.settings import Settings
from tests.conftest import INGEST, KEY, Api, empty_neo4j, make_settings
from tests.test_cli import idgraph, write_ndjson

ALICE: Key = ("phone", "+8613800138000")
EVENTS: list[dict[str, Any]] = [
    {
        "eventId": "o1",
        "source": "tmall",
        "timestamp": "2026-03-01T08:00:00Z",
        "identifiers": [{"type": "phone", "value": "13800138000"}],
        "name": " order_paid ",
        "properties": {"amount": 299.0, "category": "护肤", "items": [{"sku": "A1"}]},
    },
    {
        "eventId": "p1",
        "source": "web",
        "timestamp": "2026-03-02T08:00:00+08:00",
        "identifiers": [
            {"type": "phone", "value": "138 0013 8000"},
            {"type": "cookie_id", "value": "ck-000001"},
        ],
        "name": "page_view",
        "traits": {"city": "上海"},
    },
    {  # the general way of the import: an account rides along
        "eventId": "o2",
        "source": "crm",
        "identifiers": [{"type": "phone", "value": "13800138000"}],
        "name": "order_refunded",
        "properties": {"amount": 99},
        "account": {"id": "crm-9", "name": "Acme"},
    },
    {  # an identity event as before: empty properties are no properties
        "eventId": "i1",
        "source": "app",
        "identifiers": [{"type": "cookie_id", "value": "ck-000001"}],
        "properties": None,
    },
]
KEPT = [
    ("o1", "order_paid", {"amount": 299.0, "category": "护肤", "items": [{"sku": "A1"}]}),
    ("p1", "page_view", None),
    ("o2", "order_refunded", {"amount": 99}),
    ("i1", None, None),
]


def kept(settings: Settings) -> list[tuple[str, str | None, dict[str, Any] | None]]:
    store = settings.open_store()
    try:
        store.load()
        events = store.events_for([ALICE, ("cookie_id", "ck-000001")])
    finally:
        store.close()
    return sorted(((e.event_id, e.name, e.properties) for e in events), key=lambda e: e[0])


def test_events_keep_what_happened_through_the_api_and_the_import(
    tmp_path: Path, store_uri: str | None
) -> None:
    via_api = make_settings(tmp_path / "api", neo4j_uri=store_uri)
    with TestClient(create_app(via_api)) as client:
        result = Api(client).ingest(*EVENTS)
        assert [r["status"] for r in result["results"]] == ["ACCEPTED"] * 4, result
    assert kept(via_api) == sorted(KEPT, key=lambda e: e[0])

    if store_uri is not None:
        empty_neo4j(store_uri)
    source = write_ndjson(tmp_path / "events.ndjson", [json.dumps(e) for e in EVENTS])
    target = ["--neo4j-uri", store_uri] if store_uri else ["--data-dir", str(tmp_path / "cli")]
    imported = idgraph("import", str(source), *target, "--quiet")
    assert imported.returncode == 0, imported.stderr
    assert kept(make_settings(tmp_path / "cli", neo4j_uri=store_uri)) == kept(via_api)


def test_a_bad_name_or_properties_rejects_that_event_alone(tmp_path: Path) -> None:
    good = {"source": "web", "identifiers": [{"type": "cookie_id", "value": "ck-000002"}]}
    bad = [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"properties": {"amount": 1}}, "properties"),
        ({"name": "order_paid", "properties": [1, 2]}, "properties"),
        # JSON has no NaN or Infinity; a sum or an average could not be made of them
        ({"name": "order_paid", "properties": {"amount": float("nan")}}, "properties"),
        ({"name": "order_paid", "properties": {"items": [{"price": float("inf")}]}}, "properties"),
    ]
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        sent = [{**good, "eventId": f"b{n}", **fields} for n, (fields, _) in enumerate(bad)]
        sent.append({**good, "eventId": "ok", "name": "page_view", "properties": {}})
        # as a client's JSON library may write them: NaN and Infinity bare
        body = json.dumps({"query": INGEST, "variables": {"events": sent}})
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        response = client.post("/graphql", content=body, headers=headers)
        results = response.json()["data"]["ingestEvents"]["results"]
    assert [r["status"] for r in results] == ["REJECTED"] * len(bad) + ["ACCEPTED"]
    for result, (_, field) in zip(results, bad, strict=False):
        assert result["errorCode"] == "INVALID_EVENT"
        assert field in result["errorMessage"]


def test_events_of_the_previous_format_stay_identity_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    with TestClient(create_app(settings)) as client:
        Api(client).ingest(EVENTS[3])
    db = sqlite3.connect(data / "idgraph.sqlite3")
    db.execute("ALTER TABLE events DROP COLUMN name")
    db.execute("ALTER TABLE events DROP COLUMN properties")
    db.execute("PRAGMA user_version=5")
    db.commit()
    db.close()
    with TestClient(create_app(settings)) as client:
        Api(client).ingest(EVENTS[0], EVENTS[1])
    assert kept(settings) == [KEPT[3], KEPT[0], KEPT[1]]
