"""Ingest into Neo4j through idgraph against plain ``UNWIND ... MERGE`` of the same graph.

    python -m bench.neo4j_ingest --persons 2000 [--neo4j-uri bolt://127.0.0.1:7687]

Both run in one process against the same (emptied) database, on the same
generated events. The baseline writes the identifiers (already normalised, for
free) and one SEEN_WITH relationship per pair and source with ``UNWIND ...
MERGE``: no events, no rules, no customers. idgraph is ``idgraph import``
from the raw events, process start included: normalisation, every event
stored, sharing rules, limits, OneIDs and customers written. Without
``--neo4j-uri`` a local Neo4j is started for the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
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
    driver.execute_query(
        "CREATE CONSTRAINT identifier_key IF NOT EXISTS"
        " FOR (i:Identifier) REQUIRE (i.type, i.value) IS UNIQUE"
    )
    started = time.perf_counter()
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
def local_neo4j(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
        return
    from tests.local_neo4j import launcher

    with TemporaryDirectory() as scratch:
        port = launcher.free_port()
        process = launcher.start(Path(scratch) / "data", port, Path(scratch) / "neo4j.log")
        try:
            yield f"bolt://127.0.0.1:{port}"
        finally:
            launcher.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to use (default: start one)")
    args = parser.parse_args()
    data = generate(args.persons, args.seed)
    registry = IdentifierRegistry(load_config())
    now = datetime.now(UTC)
    clean = []
    for position, event in enumerate(data.events):
        try:
            clean.append(clean_event(position, event_from_json(event), registry, now))
        except IdgraphError:
            continue
    with local_neo4j(args.neo4j_uri) as uri, neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        empty(driver)
        base = baseline(driver, clean)
        empty(driver)
        ours = with_idgraph(uri, data.events)
    n = len(data.events)
    print(f"{n} events from {args.persons} persons\n")
    print("| method | seconds | events/s | vs baseline |")
    print("|---|---|---|---|")
    base_rate = f"{n / base:,.0f}"
    print(
        f"| UNWIND ... MERGE identifiers and edges (baseline) | {base:.1f} | {base_rate} | 1.00x |"
    )
    print(
        f"| idgraph into Neo4j (events, rules, customers) | {ours:.1f} | {n / ours:,.0f} | "
        f"{base / ours:.2f}x |"
    )


if __name__ == "__main__":
    main()
