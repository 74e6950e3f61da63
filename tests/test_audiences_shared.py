"""Several service processes on one Neo4j: what one writes, the others count within a second.

Each process keeps its own audience index; it learns of the others' writes
from the store's log of customers each write touched, reading again only
those customers.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.neo4j import Neo4jStore
from graph.tags.definitions import parse_definition
from tests.conftest import empty_neo4j
from tests.server import running_server

KEY = "shared-key"
COUNT = "query($w: JSON) { profileCount(where: $w) }"
SHANGHAI = {"trait": "city", "op": "eq", "value": "上海"}


def post(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql",
        data=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        found: dict[str, Any] = json.loads(response.read())
    assert "errors" not in found, found
    return found["data"]


def person(n: int, city: str, event: str | None = None) -> dict[str, Any]:
    return {
        "eventId": event or f"p{n}",
        "source": "crm",
        "identifiers": [{"type": "crm_id", "value": f"C{n}"}],
        "traits": {"city": city},
    }


def counted_within(url: str, where: Any, expected: int, seconds: float = 1.0) -> float:
    """How long until ``url`` counts ``expected``; fails after ``seconds``."""
    began = time.monotonic()
    while True:
        found = post(url, COUNT, {"w": where})["profileCount"]
        waited = time.monotonic() - began
        if found == expected:
            return waited
        assert waited < seconds, f"counted {found}, not {expected}, after {waited:.2f}s"
        time.sleep(0.02)


def test_two_processes_count_what_the_other_wrote_within_a_second(
    tmp_path: Path, neo4j_uri: str
) -> None:
    empty_neo4j(neo4j_uri)
    store = ["--neo4j-uri", neo4j_uri]
    with (
        running_server(tmp_path / "one", KEY, store) as (one, _),
        running_server(tmp_path / "two", KEY, store) as (two, _),
    ):
        define = "mutation($i: TagDefinitionInput!) { defineTag(input: $i) { id } }"
        shanghai_tag = {"id": "shanghai", "name": "Shanghai", "category": "BASIC", "when": SHANGHAI}
        post(one, define, {"i": shanghai_tag})
        post(
            one,
            "mutation($e: [IdentityEventInput!]!) { ingestEvents(events: $e) { accepted } }",
            {"e": [person(n, "上海" if n % 2 else "北京") for n in range(10)]},
        )
        tagged = {"tag": "shanghai", "op": "has"}
        counted_within(one, tagged, 5, seconds=30)  # the definition is built in the background
        counted_within(two, tagged, 5)
        assert post(two, COUNT, {"w": None})["profileCount"] == 10
        # A write through the second process is counted by the first, and back again.
        ingest = "mutation($e: [IdentityEventInput!]!) { ingestEvents(events: $e) { accepted } }"
        post(two, ingest, {"e": [person(n, "上海") for n in range(10, 13)]})
        counted_within(one, tagged, 8)
        counted_within(one, SHANGHAI, 8)
        post(one, ingest, {"e": [person(0, "上海", "moved")]})  # from 北京
        counted_within(two, tagged, 9)
        segment = "mutation($i: SegmentInput!) { defineSegment(input: $i) { id } }"
        post(two, segment, {"i": {"id": "sh", "name": "Shanghai", "where": tagged}})
        count = 'query { segment(id: "sh") { count } }'
        began = time.monotonic()
        while post(two, count)["segment"]["count"] != 9:
            assert time.monotonic() - began < 30
            time.sleep(0.05)
        post(two, ingest, {"e": [person(13, "上海")]})
        began = time.monotonic()
        while post(one, count)["segment"]["count"] != 10:
            assert time.monotonic() - began < 1.0, "the first process did not count it in 1 s"
            time.sleep(0.02)


def test_a_process_reads_again_only_the_customers_another_touched(neo4j_uri: str) -> None:
    empty_neo4j(neo4j_uri)
    one = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    two = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    try:
        one.tags.define(parse_definition("shanghai", "Shanghai", "BASIC", when=SHANGHAI))
        one.tags.build()
        events = [
            EventInput(
                "crm", [IdentifierInput("crm_id", f"C{n}")], f"p{n}", traits={"city": "上海"}
            )
            for n in range(300)
        ]
        one.ingest(events)
        tagged = two.audiences.parse({"tag": "shanghai", "op": "has"})
        assert two.audiences.count(tagged) == 300
        asked: list[int] = []
        tag_store = two.store.tag_store
        read = tag_store.customer_tags

        def counting(one_ids: Any) -> Any:
            wanted = list(one_ids)
            asked.append(len(wanted))
            return read(wanted)

        tag_store.customer_tags = counting  # type: ignore[method-assign]
        one.ingest(
            [EventInput("crm", [IdentifierInput("crm_id", "C0")], "moved", traits={"city": "北京"})]
        )
        two.audiences.follow()
        assert two.audiences.count(tagged) == 299
        assert asked == [1]  # the one customer the write touched, not the 300
        # Its own writes are applied as they commit, not read back from the log.
        asked.clear()
        two.ingest(
            [
                EventInput(
                    "crm", [IdentifierInput("crm_id", "C1")], "moved-1", traits={"city": "北京"}
                )
            ]
        )
        assert two.audiences.count(tagged) == 298
        two.audiences.follow()
        assert asked == []
    finally:
        one.close()
        two.close()
