"""The service as ``idgraph serve`` runs it, plus bare endpoints doing the same store reads.

    python -m bench.serve_app --data-dir D --port P [--neo4j-uri URI]

``POST /bare/profile`` ({"type", "value"}) and ``POST /bare/resolve``
({"identifiers": [{"type", "value"}, ...]}) call ``IdentityGraph`` exactly
as the GraphQL resolvers do, in the same process and the same way (in place
for the embedded store, in a thread for Neo4j), and answer plain JSON: the
difference between them and ``/graphql`` is what GraphQL costs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graph.events import IdentifierInput
from graph.identity_graph import IdentityGraph
from service.app import EVENT_LOOP, create_app, serving_process
from service.cli import fewer_collections
from service.reads import read
from service.settings import Settings


def _profile(graph: IdentityGraph, type_: str, value: str) -> dict[str, Any] | None:
    found = graph.resolve_one(IdentifierInput(type_, value))
    if found.one_id is None:
        return None
    p = graph.profile(found.one_id)
    if p is None:
        return None
    groups: dict[str, list[str]] = {}
    for i in p.identifiers:
        groups.setdefault(i.type, []).append(i.value)
    return {
        "oneId": p.one_id,
        "eventCount": p.event_count,
        "traitValues": {t.name: t.value for t in p.traits},
        "identifiers": [{"type": t, "values": v} for t, v in groups.items()],
    }


def _resolve(graph: IdentityGraph, identifiers: list[dict[str, str]]) -> list[dict[str, Any]]:
    found = graph.resolve([IdentifierInput(i["type"], i["value"]) for i in identifiers])
    return [{"oneId": r.one_id, "status": r.status} for r in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--neo4j-uri")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(args.data_dir), admin_key="bench", neo4j_uri=args.neo4j_uri)
    fewer_collections()  # as idgraph's command does for every command
    app = create_app(settings, background=True)
    serving_process(app)
    startup = app.state.startup

    async def bare_profile(request: Request) -> Response:
        graph: IdentityGraph = startup.graph
        body = json.loads(await request.body())
        found = await read(graph, _profile, graph, body["type"], body["value"])
        return Response(
            json.dumps({"profile": found}, ensure_ascii=False), media_type="application/json"
        )

    async def bare_resolve(request: Request) -> Response:
        graph: IdentityGraph = startup.graph
        body = json.loads(await request.body())
        found = await read(graph, _resolve, graph, body["identifiers"])
        return Response(json.dumps({"resolved": found}), media_type="application/json")

    app.router.routes.insert(0, Route("/bare/profile", bare_profile, methods=["POST"]))
    app.router.routes.insert(0, Route("/bare/resolve", bare_resolve, methods=["POST"]))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop=EVENT_LOOP,
    )


if __name__ == "__main__":
    main()
