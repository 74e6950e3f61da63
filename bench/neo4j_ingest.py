"""Ingest into Neo4j through idgraph against plain ``UNWIND ... MERGE`` of the same graph.

    python -m bench.neo4j_ingest --persons 2000 [--rounds 3] [--neo4j-uri bolt://...]

The baseline writes the identifiers (already normalised, for free) and one
SEEN_WITH relationship per pair and source with ``UNWIND ... MERGE``: no
events, no rules, no customers. idgraph is ``idgraph import`` from the raw
events, process start included: normalisation, every event stored, sharing
rules, limits, OneIDs and customers written.

Both are measured the same way, so that neither pays the other's warm-up:

- *first load*: each into a Neo4j of its own, just started, schema included
  (only when the benchmark starts Neo4j itself, not with ``--neo4j-uri``);
- *warm*: one Neo4j, after a warm-up round of each on another data set of
  the same size (query plans cached and the JVM's compiler done with both
  workloads, as on a server that has been up a while: after a smaller
  warm-up, rounds kept getting faster); the median of ``--rounds``
  alternating rounds, the database emptied before each. Every round's
  seconds are printed too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import neo4j

from bench.generator import generate
from bench.import_speed import idgraph_import
from graph.config import load_config
from graph.errors import IdgraphError
from graph.events import CleanEvent, clean_event, event_from_json
from graph.identifiers import IdentifierRegistry
from graph.models import pair

CHUNK = 5000


def empty(driver: neo4j.Driver) -> None:
    with driver.session() as session:  # an implicit transaction, as IN TRANSACTIONS needs
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def baseline(driver: neo4j.Driver, events: list[CleanEvent]) -> float:
    """Seconds to MERGE the identifiers and SEEN_WITH relationships, chunk by chunk."""
    started = time.perf_counter()
    driver.execute_query(
        "CREATE CONSTRAINT identifier_key IF NOT EXISTS"
        " FOR (i:Identifier) REQUIRE (i.type, i.value) IS UNIQUE"
    )
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        keys = list(dict.fromkeys(k for c in chunk for k in c.keys))
        pairs = list(
            dict.fromkeys(
                (*pair(a, b), c.source) for c in chunk for a, b in itertools.combinations(c.keys, 2)
            )
        )
        driver.execute_query(
            "UNWIND $keys AS k MERGE (:Identifier {type: k[0], value: k[1]})",
            keys=[list(k) for k in keys],
        )
        driver.execute_query(
            "UNWIND $pairs AS p MATCH (a:Identifier {type: p[0][0], value: p[0][1]}),"
            " (b:Identifier {type: p[1][0], value: p[1][1]})"
            " MERGE (a)-[:SEEN_WITH {source: p[2]}]->(b)",
            pairs=[[list(a), list(b), source] for a, b, source in pairs],
        )
    return time.perf_counter() - started


def with_idgraph(uri: str, raw: list[dict]) -> float:
    """Seconds for ``idgraph import`` to take the raw events into Neo4j and resolve them."""
    with TemporaryDirectory() as scratch:
        path = Path(scratch) / "events.ndjson"
        path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in raw), "utf-8")
        return idgraph_import(path, "--neo4j-uri", uri)


@contextmanager
def fresh_neo4j() -> Iterator[str]:
    from tests.local_neo4j import launcher

    with TemporaryDirectory() as scratch:
        port = launcher.free_port()
        process = launcher.start(Path(scratch) / "data", port, Path(scratch) / "neo4j.log")
        try:
            yield f"bolt://127.0.0.1:{port}"
        finally:
            launcher.stop(process)


@contextmanager
def given_or_fresh(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
    else:
        with fresh_neo4j() as started:
            yield started


def cleaned(raw: list[dict]) -> list[CleanEvent]:
    """The events as the baseline gets them: normalised, at no cost to it."""
    registry = IdentifierRegistry(load_config())
    now = datetime.now(UTC)
    clean = []
    for position, event in enumerate(raw):
        try:
            clean.append(clean_event(position, event_from_json(event), registry, now))
        except IdgraphError:
            continue
    return clean


def first_load(raw: list[dict], clean: list[CleanEvent]) -> tuple[float, float]:
    """Each method into a Neo4j of its own, just started."""
    with fresh_neo4j() as uri, neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        base = baseline(driver, clean)
    with fresh_neo4j() as uri:
        ours = with_idgraph(uri, raw)
    return base, ours


def warm(
    uri: str, raw: list[dict], clean: list[CleanEvent], warm_up: list[dict], rounds: int
) -> tuple[list[float], list[float]]:
    """Each round's seconds, alternating on one Neo4j, after a warm-up round of each."""
    bases: list[float] = []
    ours: list[float] = []
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        empty(driver)
        baseline(driver, cleaned(warm_up))
        empty(driver)
        with_idgraph(uri, warm_up)
        for _ in range(rounds):
            empty(driver)
            bases.append(baseline(driver, clean))
            empty(driver)
            ours.append(with_idgraph(uri, raw))
        empty(driver)
    return bases, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to use (default: start one)")
    args = parser.parse_args()
    data = generate(args.persons, args.seed)
    clean = cleaned(data.events)
    warm_up = generate(args.persons, args.seed + 1).events
    results = []
    if not args.neo4j_uri:
        results.append(("first load, each into a fresh Neo4j", *first_load(data.events, clean)))
    with given_or_fresh(args.neo4j_uri) as uri:
        bases, rounds = warm(uri, data.events, clean, warm_up, args.rounds)
    name = f"warm, median of {args.rounds} rounds"
    results.append((name, statistics.median(bases), statistics.median(rounds)))
    n = len(data.events)
    print(f"{n} events from {args.persons} persons\n")
    print("| run | baseline s | idgraph s | baseline events/s | idgraph events/s | ratio |")
    print("|---|---|---|---|---|---|")
    for name, base, ours in results:
        print(
            f"| {name} | {base:.1f} | {ours:.1f} | {n / base:,.0f} | {n / ours:,.0f} |"
            f" {base / ours:.2f}x |"
        )
    print(
        "\nwarm rounds, seconds: baseline "
        + ", ".join(f"{t:.1f}" for t in bases)
        + "; idgraph "
        + ", ".join(f"{t:.1f}" for t in rounds)
    )


if __name__ == "__main__":
    main()
