"""Resolution quality: pairwise precision/recall/F1 of idgraph against ground truth.

    python -m bench.quality --persons 20000

Prints idgraph's default config beside naive connected components over the
same normalised identifiers. Two truths are scored:

- *resolvable*: a person's identifiers that the person's own events connect
  (the best any resolver can do: a cookie that never logged in, or a WeChat
  account that never shared a phone number, stays apart in it);
- *person*: every identifier of a person together, evidence or not.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Hashable
from datetime import UTC, datetime

import networkx as nx

from bench.generator import Dataset, Key, generate
from bench.metrics import Score, pairwise
from graph.config import load_config
from graph.errors import IdgraphError
from graph.events import clean_event, event_from_json
from graph.identifiers import IdentifierRegistry, IdentifierStatus
from graph.identity_graph import IdentityGraph
from graph.resolver import EventResult
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore


def resolve_with_idgraph(
    events: list[dict], config_path: str | None, neo4j_uri: str | None = None
) -> dict[Key, str]:
    """idgraph's OneIDs for the events, on the embedded store or an empty Neo4j database."""
    with tempfile.TemporaryDirectory() as data_dir:
        store: GraphStore = Neo4jStore(neo4j_uri) if neo4j_uri else EmbeddedStore(data_dir)
        graph = IdentityGraph(load_config(config_path), store)
        if graph.store.node_count():
            graph.close()
            raise SystemExit("the Neo4j database is not empty; score into an empty one")
        # As ``idgraph import`` loads: chunk by chunk, resolved when the store asks.
        now = datetime.now(UTC)
        load = graph.bulk_load(now)
        for start in range(0, len(events), 5000):
            clean = []
            for raw in events[start : start + 5000]:
                try:
                    clean.append(clean_event(len(clean), event_from_json(raw), graph.registry, now))
                except IdgraphError:
                    continue  # the import reports these lines; they carry no evidence
            load.add(clean, [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean])
        load.finish()
        found = {key: one_id for key, one_id in graph.store.assignments() if one_id}
        graph.close()
    return found


def naive_components(events: list[dict], registry: IdentifierRegistry) -> dict[Key, int]:
    g: nx.Graph[Key] = nx.Graph()
    for event in events:
        keys = []
        for i in event["identifiers"]:
            n = registry.normalise(i["type"], i["value"])
            if n.status is not IdentifierStatus.INVALID:
                keys.append(n.key)
        g.add_nodes_from(keys)
        g.add_edges_from(itertools.pairwise(keys))
    return {key: index for index, comp in enumerate(nx.connected_components(g)) for key in comp}


def resolvable_truth(data: Dataset, registry: IdentifierRegistry) -> dict[Key, Hashable]:
    """Split each person's identifiers where their own events do not connect them."""
    parent: dict[Key, Key] = {}

    def find(key: Key) -> Key:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for event in data.events:
        actor = data.actors.get(event["eventId"])
        keys = []
        for i in event["identifiers"]:
            n = registry.normalise(i["type"], i["value"])
            if n.status is IdentifierStatus.VALID and data.truth.get(n.key) == actor:
                keys.append(n.key)
        for a, b in itertools.pairwise(keys):
            parent[find(a)] = find(b)
    return {key: (owner, find(key)) for key, owner in data.truth.items()}


def report(
    persons: int, seed: int, config_path: str | None, neo4j_uri: str | None = None
) -> dict[str, tuple[Score, Score]]:
    data = generate(persons, seed)
    registry = IdentifierRegistry(load_config(config_path))
    resolvable = resolvable_truth(data, registry)
    person: dict[Hashable, Hashable] = dict(data.truth)
    started = time.perf_counter()
    ours = resolve_with_idgraph(data.events, config_path, neo4j_uri)
    took = time.perf_counter() - started
    naive = naive_components(data.events, registry)
    rows: dict[str, tuple[Score, Score]] = {}
    for name, predicted in (
        ("naive connected components", naive),
        (f"idgraph (default config, {'Neo4j' if neo4j_uri else 'embedded'} store)", ours),
    ):
        as_hashable: dict[Hashable, Hashable] = dict(predicted)
        rows[name] = (pairwise(dict(resolvable), as_hashable), pairwise(person, as_hashable))
    print(
        f"{persons} persons, {len(data.events)} events, {len(data.truth)} identifiers; "
        f"idgraph resolved them in {took:.1f}s\n"
    )
    print("| method | precision | recall | F1 | F1 (person truth) | largest cluster |")
    print("|---|---|---|---|---|---|")
    for name, (res, every) in rows.items():
        print(
            f"| {name} | {res.precision:.4f} | {res.recall:.4f} | {res.f1:.4f} "
            f"| {every.f1:.4f} | {res.largest} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", help="an idgraph config file to score instead of the defaults")
    parser.add_argument("--neo4j-uri", help="resolve in this (empty) Neo4j database instead")
    args = parser.parse_args()
    report(args.persons, args.seed, args.config, args.neo4j_uri)


if __name__ == "__main__":
    main()
