"""Neo4j with authentication on: credentials reach it from flags or the environment."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

from tests.local_neo4j import launcher
from tests.server import IDGRAPH

PASSWORD = "idgraph-test-secret"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IDGRAPH, *args], capture_output=True, text=True, timeout=120, env=env)


def test_credentials_reach_neo4j_and_a_refusal_names_the_flags(tmp_path: Path) -> None:
    port = launcher.free_port()
    neo4j = launcher.start(tmp_path / "neo4j", port, tmp_path / "neo4j.log", password=PASSWORD)
    uri = f"bolt://127.0.0.1:{port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IDGRAPH_NEO4J_")}
    source = tmp_path / "events.ndjson"
    event = {
        "eventId": "e1",
        "source": "crm",
        "identifiers": [
            {"type": "phone", "value": "13800138000"},
            {"type": "crm_id", "value": "C1"},
        ],
    }
    source.write_text(json.dumps(event) + "\n", "utf-8")
    data = ("--data-dir", str(tmp_path / "d"))
    try:
        flags = ("--neo4j-uri", uri, "--neo4j-user", "neo4j", "--neo4j-password", PASSWORD)
        done = run("import", str(source), *flags, *data, "--quiet", env=clean)
        assert done.returncode == 0, done.stderr

        from_env = {
            **clean,
            "IDGRAPH_NEO4J_URI": uri,
            "IDGRAPH_NEO4J_USER": "neo4j",
            "IDGRAPH_NEO4J_PASSWORD": PASSWORD,
        }
        mapping = tmp_path / "mapping.csv"
        done = run("export", str(mapping), *data, env=from_env)
        assert done.returncode == 0, done.stderr
        with mapping.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert {(r["type"], r["value"]) for r in rows} == {
            ("phone", "+8613800138000"),
            ("crm_id", "C1"),
        }
        assert len({r["one_id"] for r in rows}) == 1

        for refused in (
            {**from_env, "IDGRAPH_NEO4J_PASSWORD": "not-the-password"},
            {k: v for k, v in from_env.items() if k != "IDGRAPH_NEO4J_PASSWORD"},
            {k: v for k, v in from_env.items() if not k.startswith("IDGRAPH_NEO4J_USER")},
        ):
            done = run("export", str(tmp_path / "refused.csv"), *data, env=refused)
            assert done.returncode == 2
            assert "STORE_UNAVAILABLE" in done.stderr
            assert "--neo4j-user/--neo4j-password" in done.stderr
    finally:
        launcher.stop(neo4j)
