"""One Neo4j, several writers, crashes: the graph stays consistent and complete."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neo4j

from bench.generator import generate
from graph.config import load_config
from graph.errors import IdgraphError
from graph.events import EventInput, clean_event, event_from_json
from graph.identity_graph import IdentityGraph
from graph.models import Key
from graph.resolver import EventResult
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from tests.conftest import INGEST, empty_neo4j
from tests.server import running_server

Groups = set[frozenset[Key]]


def groups(graph: IdentityGraph) -> Groups:
    found: dict[str, set[Key]] = {}
    for key, one_id in graph.store.assignments():
        if one_id is not None:
            found.setdefault(one_id, set()).add(key)
    return {frozenset(keys) for keys in found.values()}


INVARIANTS = {
    "an identifier belongs to several customers": "MATCH (i:Identifier)-[r:BELONGS_TO]->()"
    " WITH i, count(r) AS n WHERE n > 1 RETURN count(i) AS broken",
    "an identifier belongs to a merged or retired OneID": "MATCH (i:Identifier)"
    "-[:BELONGS_TO]->(c:Customer) WHERE c.retired OR EXISTS { (c)-[:MERGED_INTO]->() }"
    " RETURN count(i) AS broken",
    "a blocked or shared identifier belongs to a customer": "MATCH (i:Identifier)"
    "-[:BELONGS_TO]->() WHERE i.blocked OR i.shared RETURN count(i) AS broken",
    "a customer merged into two": "MATCH (c:Customer)-[r:MERGED_INTO]->()"
    " WITH c, count(r) AS n WHERE n > 1 RETURN count(c) AS broken",
    "an identifier lists an event that is not stored": "MATCH (i:Identifier)"
    " UNWIND i.events AS seq OPTIONAL MATCH (e:Event {seq: seq}) WITH e WHERE e IS NULL"
    " RETURN count(*) AS broken",
    "a deferred event left unresolved": "MATCH (s:IdgraphState)"
    " WHERE s.unresolvedFrom IS NOT NULL OR s.pendingFrom IS NOT NULL RETURN count(s) AS broken",
}


def check_invariants(uri: str) -> Groups:
    """What must hold after any interleaving or crash; returns the partition."""
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        for broken, query in INVARIANTS.items():
            assert driver.execute_query(query).records[0]["broken"] == 0, broken
    graph = IdentityGraph(load_config(), Neo4jStore(uri))
    try:
        before = groups(graph)
        graph.rebuild()
        assert groups(graph) == before, "the stored customers are not what the evidence gives"
        return before
    finally:
        graph.close()


def sequential(events: list[EventInput], tmp_path: Path) -> Groups:
    graph = IdentityGraph(load_config(), EmbeddedStore(tmp_path / "reference"))
    try:
        graph.ingest(events, bulk=True)
        graph.resolve_pending()
        return groups(graph)
    finally:
        graph.close()


def test_concurrent_writers_touching_the_same_customers(tmp_path: Path, neo4j_uri: str) -> None:
    empty_neo4j(neo4j_uri)
    events = [event_from_json(e) for e in generate(120, seed=21).events]
    shuffled = {n: random.Random(n).sample(events, len(events)) for n in range(3)}
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        graph = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))  # as another process would
        try:
            mine = shuffled[n]
            for start in range(0, len(mine), 40):
                graph.ingest(mine[start : start + 40])
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
        finally:
            graph.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in shuffled]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert check_invariants(neo4j_uri) == sequential(events, tmp_path)


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer server-key", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_a_service_killed_mid_ingest_leaves_a_consistent_graph(
    tmp_path: Path, neo4j_uri: str
) -> None:
    empty_neo4j(neo4j_uri)
    raw = generate(200, seed=8).events
    acknowledged: list[str] = []
    extra = ["--neo4j-uri", neo4j_uri]
    with running_server(tmp_path / "d", extra=extra) as (url, process):

        def send() -> None:
            for start in range(0, len(raw), 50):
                try:
                    body = post(
                        url, {"query": INGEST, "variables": {"events": raw[start : start + 50]}}
                    )
                except OSError:
                    return  # the service is gone
                acknowledged.extend(r["eventId"] for r in body["data"]["ingestEvents"]["results"])

        sender = threading.Thread(target=send)
        sender.start()
        while len(acknowledged) < 300 and sender.is_alive():
            time.sleep(0.05)
        assert len(acknowledged) >= 300, "the service stopped answering before it was killed"
        os.kill(process.pid, signal.SIGKILL)
        sender.join()
    partition = check_invariants(neo4j_uri)
    assert partition
    with running_server(tmp_path / "d", extra=extra) as (url, _):
        again = post(url, {"query": INGEST, "variables": {"events": raw[:50]}})
        statuses = {r["status"] for r in again["data"]["ingestEvents"]["results"]}
        assert statuses <= {"DUPLICATE", "REJECTED"}, "an acknowledged event was lost"
        for start in range(0, len(raw), 500):  # everything, the acknowledged part again
            post(url, {"query": INGEST, "variables": {"events": raw[start : start + 500]}})
    assert check_invariants(neo4j_uri) == sequential([event_from_json(e) for e in raw], tmp_path)


def test_a_bulk_load_cut_short_is_finished_by_the_next_start(
    tmp_path: Path, neo4j_uri: str
) -> None:
    """The deferred events are read back from Neo4j, materialised and resolved."""
    empty_neo4j(neo4j_uri)
    events = [event_from_json(e) for e in generate(150, seed=9).events]
    cut = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    cut.ingest(events[:1000], bulk=True)
    cut.ingest(events[1000:], bulk=True)
    cut.close()  # as if killed before the final resolution
    IdentityGraph(load_config(), Neo4jStore(neo4j_uri)).close()  # the next start
    assert check_invariants(neo4j_uri) == sequential(events, tmp_path)


def test_a_first_bulk_load_with_another_writer_meanwhile(tmp_path: Path, neo4j_uri: str) -> None:
    """The loader's own view of the graph is then incomplete: it resolves the general way."""
    empty_neo4j(neo4j_uri)
    events = [event_from_json(e) for e in generate(120, seed=13).events]
    now = datetime.now(UTC)
    loader = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    other = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    try:
        load = loader.bulk_load(now)
        half = len(events) // 2
        results: list[EventResult] = []
        for chunk in (events[:half], events[half:]):
            clean = []
            for event in chunk:
                with contextlib.suppress(IdgraphError):
                    clean.append(clean_event(len(clean), event, loader.registry, now))
            results = [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean]
            load.add(clean, results)
            other.ingest([events[0], events[-1]])  # the same people, through the API
        load.finish()
        # The last event reached the store through the other writer first.
        assert [r.status for r in results if r.event_id == events[-1].event_id] == ["DUPLICATE"]
    finally:
        loader.close()
        other.close()
    assert check_invariants(neo4j_uri) == sequential(events, tmp_path)
