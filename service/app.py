"""The ASGI application factory: ``create_app(settings)`` builds a whole service.

Tests build one per test on a temporary data dir; ``idgraph serve`` builds one
for uvicorn.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from graph import pacing
from graph.identity_graph import IdentityGraph
from service.graphiql import AssetFiles, assets_dir, graphiql_page
from service.http import JSON_TYPE, error_body, execute_request, respond
from service.pacing import PACER, CountRequests, LoopWriter, ReadsFirst, WritePool
from service.settings import Settings, ensure_admin_key
from service.startup import Startup
from service.tag_jobs import TagJobs

GRAPHIQL_ASSETS_PATH = "/graphiql-assets"


# The event loop uvicorn runs the service on. uvicorn would take uvloop where it
# is installed: beside an ingest stream, 50 resolveIdentifiers clients on uvloop
# had requests waiting up to 3.2 s (p99 1.2 and 1.4 s in two of six 5 s runs)
# while the interpreter was never held for more than 70 ms; on asyncio's loop
# none took more than 330 ms. HTTP is parsed by httptools (a dependency).
EVENT_LOOP = "asyncio"


def serving_process(app: Starlette) -> None:
    """Tune the interpreter of a process that serves ``app``'s reads beside its writes.

    Threads still share the interpreter with the event loop: the tag jobs,
    writes to Neo4j, and the calls a loop write hands over. Every time a read
    gives the interpreter up (a socket, a SQLite call) it waits for such a
    thread's turn to end to get it back; CPython's default turn is 5 ms,
    which made a read beside an ingest stream take tens of milliseconds, and
    a turn of half a millisecond costs the threads little. Those threads
    also step aside at ``graph.pacing``'s points while reads wait.
    """
    sys.setswitchinterval(0.0005)
    PACER.threads = app.state.reads_first


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and "query" not in request.query_params


def create_app(
    settings: Settings, graph: IdentityGraph | None = None, background: bool = False
) -> Starlette:
    """The service; with ``background`` its store is opened while it already answers.

    Errors a user must fix (a data dir another process holds, a store of
    another version, a bad config) are raised here either way; only reading
    the graph into memory is left to the background.
    """
    admin_key, _ = ensure_admin_key(settings)
    reads_first = ReadsFirst(settings.writer_share)
    pacing.install(PACER)
    if graph is None:
        config = settings.load_config()
        tag_every = config.tags.resolution_seconds
        store = settings.open_store(load=not background)

        def open_graph() -> IdentityGraph:
            try:
                store.load()
                return IdentityGraph(config, store, clock=settings.clock)
            except BaseException:
                store.close()  # let go of the data dir: another start may fix what failed
                raise

        startup = Startup(open_graph, background)
        store_writes_block = store.writes_block
    else:
        given = graph
        tag_every = graph.config.tags.resolution_seconds
        startup = Startup(lambda: given, background=False)
        store_writes_block = graph.store.writes_block
    writes: LoopWriter | WritePool = (
        WritePool(settings.writer_nice)
        if store_writes_block
        else LoopWriter(reads_first, settings.writer_nice)
    )

    async def graphql(request: Request) -> Response:
        if wants_html(request):
            return graphiql_page(GRAPHIQL_ASSETS_PATH)
        opened = startup.graph
        if opened is None:
            why = "is starting: opening the data dir" if startup.error is None else "failed to open"
            return respond(
                error_body("STORE_UNAVAILABLE", f"idgraph {why}; try again shortly"),
                503,
                JSON_TYPE,
                {"Retry-After": "1"},
            )
        return await execute_request(request, opened, admin_key, reads_first, writes, tag_jobs.wake)

    async def healthz(request: Request) -> Response:
        opened = startup.graph
        if opened is None:
            body = {"status": startup.status}
            if startup.error is not None:
                body["error"] = startup.error
            return JSONResponse(body, status_code=503)
        if opened.store.healthy():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    async def root(request: Request) -> Response:
        return RedirectResponse("/graphql")

    tag_jobs = TagJobs(lambda: startup.graph, tag_every, settings.writer_nice)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tag_jobs.start()
        yield
        tag_jobs.stop()
        await writes.close()
        startup.wait()
        if startup.graph is not None:
            startup.graph.close()

    middleware = [Middleware(CountRequests, reads_first=reads_first)]
    if settings.cors_origins:
        # Browser apps on other origins (a customer-360 page) call the API directly;
        # only the origins the operator lists may.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", root, methods=["GET"]),
            Mount(GRAPHIQL_ASSETS_PATH, app=AssetFiles(assets_dir())),
        ],
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.startup = startup
    app.state.reads_first = reads_first
    return app
