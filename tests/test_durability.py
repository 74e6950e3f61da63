"""What a mutation returned survives restarts and kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.errors import StoreUnavailable
from service.app import create_app
from tests.conftest import INGEST, RESOLVE, Api, event, make_settings
from tests.server import IDGRAPH, running_server
from tests.test_resolution import REMOVE


def post(url: str, key: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_restart_keeps_everything(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        api.ingest(
            event("a", "web", ("cookie_id", "ck-100000"), ("email", "a@example.com"), name="A"),
            event("b", "app", ("device_id", "dev-100000"), ("phone", "13800138000")),
        )
        young = api.one_id("phone", "13800138000")
        api.ingest(event("c", "crm", ("email", "a@example.com"), ("phone", "13800138000")))
        one = api.one_id("email", "a@example.com")
        before = api(
            "query P($id: ID!) { profile(oneId: $id) { oneId aliases eventCount "
            "identifiers { type } traits { name value } history { kind others } } }",
            {"id": young},
        )
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        after = api(
            "query P($id: ID!) { profile(oneId: $id) { oneId aliases eventCount "
            "identifiers { type } traits { name value } history { kind others } } }",
            {"id": young},
        )
        assert after == before and after["profile"]["oneId"] == one
        assert api.ingest(event("c", "crm", ("email", "a@example.com")))["duplicates"] == 1
        api.ingest(event("d", "web", ("cookie_id", "ck-100000"), ("member_id", "M9")))
        assert api.one_id("member_id", "M9") == one


def test_kill_9_loses_nothing_that_was_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: list[str] = []
    with running_server(data, key="k") as (url, process):
        for batch in range(5):
            events = [
                event(
                    f"e{batch}-{i}",
                    "web",
                    ("cookie_id", f"ck-{batch}{i:05d}"),
                    ("phone", f"1380013{batch}{i:03d}"),
                )
                for i in range(200)
            ]
            body = post(url, "k", INGEST, {"events": events})
            assert body["data"]["ingestEvents"]["accepted"] == 200
            acknowledged += [e["identifiers"][0]["value"] for e in events]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with running_server(data, key="k") as (url, _):
        ids = [{"type": "cookie_id", "value": v} for v in acknowledged]
        found = post(url, "k", RESOLVE, {"ids": ids})["data"]["resolveIdentifiers"]
        assert [f["status"] for f in found] == ["LINKED"] * len(acknowledged)


def test_serve_without_a_key_makes_one_and_prints_it_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, key=None) as (url, process):
        key = (data / "admin.key").read_text().strip()
        assert post(url, key, "{ __typename }")["data"] == {"__typename": "Query"}
        process.terminate()
        output = process.communicate(timeout=10)[0]
        assert key in output
    with running_server(data, key=None) as (url, process):
        process.terminate()
        assert key not in process.communicate(timeout=10)[0]


def test_one_process_per_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, key="k"):
        result = subprocess.run(
            [IDGRAPH, "export", str(tmp_path / "out.csv"), "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "STORE_UNAVAILABLE" in result.stderr and "in use" in result.stderr


def test_an_import_cut_short_is_finished_by_the_next_start(tmp_path: Path) -> None:
    from bench.generator import generate
    from graph.config import load_config
    from graph.events import event_from_json
    from graph.identity_graph import IdentityGraph
    from graph.store.embedded import EmbeddedStore

    events = [event_from_json(e) for e in generate(150, seed=9).events]
    cut = IdentityGraph(load_config(), EmbeddedStore(tmp_path / "cut"))
    cut.ingest(events[:1000], bulk=True)
    cut.ingest(events[1000:], bulk=True)
    cut.close()  # as if killed before the final resolution
    reopened = IdentityGraph(load_config(), EmbeddedStore(tmp_path / "cut"))
    assert reopened.store.dirty_keys() == []
    online = IdentityGraph(load_config(), EmbeddedStore(tmp_path / "online"))
    for start in range(0, len(events), 500):
        online.ingest(events[start : start + 500])

    def groups(graph: IdentityGraph) -> set[frozenset[tuple[str, str]]]:
        by_one_id: dict[str, set[tuple[str, str]]] = {}
        for key, one_id in graph.store.assignments():
            if one_id is not None:
                by_one_id.setdefault(one_id, set()).add(key)
        return {frozenset(g) for g in by_one_id.values()}

    assert groups(reopened) == groups(online) and len(groups(online)) > 100
    reopened.close()
    online.close()


def test_a_store_of_the_previous_format_is_upgraded(tmp_path: Path) -> None:
    """Format 4 kept no anchors: each living OneID gets its oldest identifier's."""
    data = tmp_path / "data"
    with TestClient(create_app(make_settings(data))) as client:
        api = Api(client)
        api.ingest(event("a", "web", ("cookie_id", "ck-111111"), ("email", "a@x.com")))
        api.ingest(event("b", "app", ("device_id", "dev-222222"), ("phone", "13800138000")))
        before = [api.one_id("cookie_id", "ck-111111"), api.one_id("device_id", "dev-222222")]
    db = sqlite3.connect(data / "idgraph.sqlite3")
    db.execute("ALTER TABLE customers DROP COLUMN anchor")
    db.execute("ALTER TABLE events DROP COLUMN name")
    db.execute("ALTER TABLE events DROP COLUMN properties")
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()
    with TestClient(create_app(make_settings(data))) as client:
        api = Api(client)
        assert [api.one_id("cookie_id", "ck-111111"), api.one_id("device_id", "dev-222222")] == (
            before
        )
        api.ingest(event("c", "crm", ("email", "a@x.com"), ("phone", "13800138000")))
        assert api.one_id("device_id", "dev-222222") == before[0]
        api(REMOVE, {"id": {"type": "email", "value": "a@x.com"}})
        assert [api.one_id("cookie_id", "ck-111111"), api.one_id("device_id", "dev-222222")] == (
            before
        )


def test_a_store_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TestClient(create_app(make_settings(data))):
        pass
    db = sqlite3.connect(data / "idgraph.sqlite3")
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreUnavailable, match="store format 99"):
        create_app(make_settings(data))
