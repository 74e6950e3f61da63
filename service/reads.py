"""Where the API runs a read: in place on the event loop, or in a thread for a networked store.

The embedded store answers from memory and a local file in microseconds to
a millisecond, without locks: a hop to a thread pool for each read would
cost more than the read, and the pool's threads would only take turns on
the interpreter. A read from Neo4j waits on the network, so it runs in a
thread and the event loop serves other requests meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from graph.identity_graph import IdentityGraph

P = ParamSpec("P")
T = TypeVar("T")


async def read(graph: IdentityGraph, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if graph.store.reads_block:
        return await run_in_threadpool(work, *args, **kwargs)
    return work(*args, **kwargs)
