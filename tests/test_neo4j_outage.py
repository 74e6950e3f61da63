"""A Neo4j that goes away and comes back: typed errors meanwhile, recovery without a restart."""

from __future__ import annotations

import subprocess
from pathlib import Path

from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import INGEST, KEY, RESOLVE, event, make_settings
from tests.local_neo4j import launcher
from tests.server import IDGRAPH


def test_health_and_errors_follow_neo4j_and_the_service_recovers(tmp_path: Path) -> None:
    port = launcher.free_port()
    data, log = tmp_path / "neo4j", tmp_path / "neo4j.log"
    neo4j = launcher.start(data, port, log)
    headers = {"Authorization": f"Bearer {KEY}"}
    phone = {"ids": [{"type": "phone", "value": "13800138000"}]}
    try:
        settings = make_settings(tmp_path / "d", neo4j_uri=f"bolt://127.0.0.1:{port}")
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            sent = {"events": [event("e1", "crm", ("phone", "13800138000"), ("crm_id", "C1"))]}
            body = client.post(
                "/graphql", json={"query": INGEST, "variables": sent}, headers=headers
            ).json()
            assert body["data"]["ingestEvents"]["accepted"] == 1

            launcher.stop(neo4j)
            assert client.get("/healthz").status_code == 503
            body = client.post(
                "/graphql", json={"query": RESOLVE, "variables": phone}, headers=headers
            ).json()
            assert body["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
            assert "Neo4j" in body["errors"][0]["message"]

            neo4j = launcher.start(data, port, log)
            assert client.get("/healthz").status_code == 200
            body = client.post(
                "/graphql", json={"query": RESOLVE, "variables": phone}, headers=headers
            ).json()
            assert body["data"]["resolveIdentifiers"][0]["status"] == "LINKED"
    finally:
        launcher.stop(neo4j)


def test_a_database_that_does_not_exist_is_named_in_the_error(
    tmp_path: Path, neo4j_uri: str
) -> None:
    done = subprocess.run(
        [
            IDGRAPH,
            "export",
            str(tmp_path / "out.csv"),
            "--neo4j-uri",
            neo4j_uri,
            "--neo4j-database",
            "nosuchdb",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "STORE_UNAVAILABLE" in done.stderr and "--neo4j-database" in done.stderr
