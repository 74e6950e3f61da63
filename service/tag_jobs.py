"""The background work of tags: building new definitions, and re-deciding customers time moved.

One thread per service. It wakes when a definition is saved, and otherwise
every ``resolution_seconds``: then it cuts the RFM bins again when their
schedule says so, builds what is BUILDING and decides
again the customers whose next moment of possible change has passed (the
store keeps that moment per customer, so nothing scans every profile).
Errors are logged and tried again at the next wake: a database that is down
now is no reason to stop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from graph.identity_graph import IdentityGraph
from service.pacing import lower_priority

log = logging.getLogger(__name__)
TAG_THREAD = "idgraph-tags"  # the thread's name, as logs and profilers show it


class TagJobs:
    def __init__(
        self, graph: Callable[[], IdentityGraph | None], every_seconds: float, nice: int = 0
    ) -> None:
        self._graph = graph
        self._every = every_seconds
        self._nice = nice
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=TAG_THREAD, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        lower_priority(self._nice)  # background work: the event loop's readers come first
        while not self._stop.is_set():
            graph = self._graph()
            if graph is not None:
                try:
                    graph.rfm.run_due()
                    graph.tags.build(stopping=self._stop.is_set)
                    graph.tags.run_due()
                except Exception:
                    log.exception("tag work failed; trying again in %.0f s", self._every)
            self._wake.wait(self._every if graph is not None else 0.1)
            self._wake.clear()
