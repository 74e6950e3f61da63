"""docker-compose.yml and the Dockerfile agree with each other and with the service's settings.

There is no Docker engine to run them here, so this reads them as a reviewer
would: every setting the compose file passes is one the service reads, the
service reaches Neo4j by its compose name and Bolt port with the password
Neo4j is given, and health checks, volumes and ports line up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return loaded


def settings_read_by_the_service() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "service").rglob("*.py"):
        names |= set(re.findall(r"IDGRAPH_[A-Z0-9_]+", path.read_text("utf-8")))
    return names


def expand(value: str) -> str:
    """What compose makes of ${NAME:-default} when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_neo4j_is_the_community_lts_image_with_a_health_check_and_a_named_volume() -> None:
    spec = compose()
    neo4j = spec["services"]["neo4j"]
    assert neo4j["image"] == "neo4j:5.26-community"
    assert "cypher-shell" in " ".join(neo4j["healthcheck"]["test"])
    volume, target = neo4j["volumes"][0].split(":")
    assert target == "/data" and volume in spec["volumes"]


def test_the_service_is_built_here_and_configured_for_that_neo4j() -> None:
    spec = compose()
    service = spec["services"]["idgraph"]
    assert service["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    assert service["depends_on"]["neo4j"]["condition"] == "service_healthy"
    env = {k: expand(str(v)) for k, v in service["environment"].items()}
    unknown = set(env) - settings_read_by_the_service()
    assert not unknown, f"compose sets variables the service never reads: {unknown}"
    assert env["IDGRAPH_NEO4J_URI"] == "bolt://neo4j:7687"
    user, password = expand(spec["services"]["neo4j"]["environment"]["NEO4J_AUTH"]).split("/")
    assert (env["IDGRAPH_NEO4J_USER"], env["IDGRAPH_NEO4J_PASSWORD"]) == (user, password)
    assert env["IDGRAPH_HOST"] == "0.0.0.0"
    assert service["ports"] == [f"{env['IDGRAPH_PORT']}:{env['IDGRAPH_PORT']}"]
    volume, target = service["volumes"][0].split(":")
    assert target == env["IDGRAPH_DATA_DIR"] and volume in spec["volumes"]


def test_the_image_runs_the_console_script_and_serves_graphiql_from_its_own_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert 'CMD ["idgraph", "serve"]' in dockerfile
    assert 'idgraph = "service.cli:main"' in (ROOT / "pyproject.toml").read_text("utf-8")
    assert "npm ci" in dockerfile and "IDGRAPH_GRAPHIQL_ASSETS=/app/graphiql-assets" in dockerfile
    assert "/healthz" in dockerfile and "EXPOSE 8000" in dockerfile
    for copied in re.findall(r"^COPY (?!--)(\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / copied).exists(), copied
