"""Tag speed: one heavy customer's update, and a new definition built over many profiles.

    python -m bench.tags [--events 10000] [--persons 100000] [--neo4j-uri bolt://...]

1. A customer with ``--events`` orders and page views over a year, twenty
   rule tags defined (``bench.tag_rules``): the time ``ingestEvents`` takes,
   in process, for one more order (median and p95 of 50), beside the same
   ingest with tags switched off (the identity work alone).
2. ``--persons`` generated people with about eight behavioural events each,
   loaded by ``idgraph import`` and tagged by ``idgraph retag``: the time from
   ``defineTag`` of a new definition to ``READY``, built as the service builds
   it (in parts, beside nothing else).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.behaviour import behaviour_events
from bench.generator import generate
from bench.tag_rules import definitions
from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.protocol import GraphStore
from graph.tags.definitions import parse_definition
from graph.tags.models import TagStatus

IDGRAPH = str(Path(sys.executable).with_name("idgraph"))
PHONE = IdentifierInput("phone", "13800138000")
NEW_TAG = {
    "id": "q4-big-spender",
    "name": "Q4 big spender",
    "category": "VALUE",
    "when": {
        "aggregate": "sum",
        "event": "order_paid",
        "property": "amount",
        "within": {"from": "2025-10-01T00:00:00Z", "to": "2025-12-31T23:59:59Z"},
        "op": "gte",
        "value": 1000,
    },
}


def open_store(data_dir: Path, neo4j_uri: str | None) -> GraphStore:
    if neo4j_uri is None:
        from graph.store.embedded import EmbeddedStore

        return EmbeddedStore(data_dir)
    from graph.store.neo4j import Neo4jStore

    return Neo4jStore(neo4j_uri)


def heavy_customer(events: int, data_dir: Path, neo4j_uri: str | None) -> list[str]:
    graph = IdentityGraph(load_config(), open_store(data_dir, neo4j_uri))
    try:
        for rule in definitions():
            graph.tags.define(parse_definition(**rule))
        graph.tags.build()
        start = datetime(2025, 1, 1, tzinfo=UTC)
        history = [
            EventInput(
                "tmall" if n % 3 else "app",
                [PHONE],
                f"h{n}",
                start + timedelta(minutes=52 * n),
                name="order_paid" if n % 4 == 0 else "page_view",
                properties={"amount": 50.0 + n % 200, "category": f"c{n % 7}"},
            )
            for n in range(events)
        ]
        for i in range(0, len(history), 500):
            graph.ingest(history[i : i + 500])
        rows = []
        for tags_on in (False, True):
            graph.resolver.deriving = graph._derive_tags if tags_on else None
            took = []
            for n in range(50):
                event = EventInput(
                    "tmall",
                    [PHONE],
                    f"x{tags_on}{n}",
                    start + timedelta(days=365, minutes=n),
                    name="order_paid",
                    properties={"amount": 99.0, "category": "c1"},
                )
                began = time.perf_counter()
                graph.ingest([event])
                took.append((time.perf_counter() - began) * 1000)
            took.sort()
            what = "with 21 tags" if tags_on else "tags off (identity alone)"
            rows.append(
                f"| one order for a customer with {events:,} events, {what} |"
                f" {statistics.median(took):.1f} | {took[int(len(took) * 0.95) - 1]:.1f} |"
            )
        one_id = graph.resolve_one(PHONE).one_id
        assert one_id is not None
        held = graph.store.tag_store.customer_tags([one_id])[one_id]
        assert "lifetime-spend" in held, "the heavy customer was not tagged"
        return rows
    finally:
        graph.close()


def load_behaviour(persons: int, data_dir: Path, neo4j_uri: str | None) -> int:
    """``persons`` generated people with about eight orders and views each, loaded by
    ``idgraph import`` (no tags decided); how many events there were."""
    data = generate(persons, 11)
    events = sorted(
        [*data.events, *behaviour_events(data.truth, 11, 8.0)], key=lambda e: e["timestamp"]
    )
    path = data_dir.parent / "events.ndjson"
    with path.open("w", encoding="utf-8") as handle:
        for e in events:
            handle.write(json.dumps(e, ensure_ascii=False) + "\n")
    store = ["--neo4j-uri", neo4j_uri] if neo4j_uri else []
    # The generator writes a few unusable lines on purpose: the import rejects them (exit 1).
    imported = subprocess.run(
        [IDGRAPH, "import", str(path), "--quiet", "--data-dir", str(data_dir), *store],
        capture_output=True,
    )
    assert imported.returncode in (0, 1), imported.stderr
    return len(events)


def build_time(persons: int, data_dir: Path, neo4j_uri: str | None) -> list[str]:
    events = load_behaviour(persons, data_dir, neo4j_uri)
    store = ["--neo4j-uri", neo4j_uri] if neo4j_uri else []
    common = ["--data-dir", str(data_dir), *store]
    began = time.perf_counter()
    subprocess.run([IDGRAPH, "retag", *common], check=True, capture_output=True)
    retag = time.perf_counter() - began
    graph = IdentityGraph(load_config(), open_store(data_dir, neo4j_uri))
    try:
        customers = len({o for _, o in graph.store.assignments() if o is not None})
        began = time.perf_counter()
        graph.tags.define(parse_definition(**NEW_TAG))
        graph.tags.build()
        ready = time.perf_counter() - began
        stored = graph.tags.definition(NEW_TAG["id"])
        assert stored is not None and stored.status is TagStatus.READY
        tagged = len(graph.store.tag_store.tagged(NEW_TAG["id"]))
    finally:
        graph.close()
    return [
        f"| `idgraph retag`: {customers:,} profiles, {events:,} events, rollups made |"
        f" {retag:.1f} s | |",
        f"| a new definition to READY on {customers:,} profiles ({tagged:,} tagged) |"
        f" {ready:.1f} s | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to use instead of the embedded store")
    args = parser.parse_args()
    store = "Neo4j" if args.neo4j_uri else "embedded"
    print(f"{store} store\n")
    print("| measure | median ms (or time) | p95 ms |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for row in heavy_customer(args.events, Path(scratch) / "heavy", args.neo4j_uri):
            print(row, flush=True)
    if args.neo4j_uri:
        from tests.conftest import empty_neo4j

        empty_neo4j(args.neo4j_uri)
    with tempfile.TemporaryDirectory() as scratch:
        for row in build_time(args.persons, Path(scratch) / "many", args.neo4j_uri):
            print(row, flush=True)


if __name__ == "__main__":
    main()
