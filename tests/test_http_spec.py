"""The graphql-http server audit (GraphQL-over-HTTP spec) against a real ``idgraph serve``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from service.graphiql import assets_dir
from tests.server import running_server

AUDIT = Path(__file__).with_name("graphql_http_audit.cjs")


def test_graphql_http_audit_has_no_errors_or_warnings(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is needed for the GraphQL-over-HTTP audit (make install installs it)"
    modules = assets_dir()
    assert (modules / "graphql-http").is_dir(), "run `make install` to get graphql-http"
    with running_server(tmp_path / "data", key="audit-key") as (url, _):
        result = subprocess.run(
            [node, str(AUDIT), str(modules), f"{url}/graphql", "audit-key"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    audits = json.loads(result.stdout)
    assert len(audits) > 40
    problems = [a for a in audits if a["status"] != "ok"]
    assert problems == []
