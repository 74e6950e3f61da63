"""The ASGI application factory: ``create_app(settings)`` builds a whole service.

Tests build one per test on a temporary data dir; ``idgraph serve`` builds one
for uvicorn.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from graph.identity_graph import IdentityGraph
from service.graphiql import AssetFiles, assets_dir, graphiql_page
from service.http import execute_request
from service.settings import Settings, ensure_admin_key

GRAPHIQL_ASSETS_PATH = "/graphiql-assets"


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and "query" not in request.query_params


def create_app(settings: Settings, graph: IdentityGraph | None = None) -> Starlette:
    admin_key, _ = ensure_admin_key(settings)
    if graph is None:
        graph = IdentityGraph(settings.load_config(), settings.open_store())
    service_graph = graph

    async def graphql(request: Request) -> Response:
        if wants_html(request):
            return graphiql_page(GRAPHIQL_ASSETS_PATH)
        return await execute_request(request, service_graph, admin_key)

    async def healthz(request: Request) -> Response:
        if service_graph.store.healthy():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    async def root(request: Request) -> Response:
        return RedirectResponse("/graphql")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service_graph.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", root, methods=["GET"]),
            Mount(GRAPHIQL_ASSETS_PATH, app=AssetFiles(assets_dir())),
        ],
        lifespan=lifespan,
        middleware=[
            # Browser apps on other origins (a customer-360 page) call the API directly;
            # only the origins the operator lists may.
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                max_age=600,
            )
        ]
        if settings.cors_origins
        else [],
    )
    app.state.graph = service_graph
    return app
