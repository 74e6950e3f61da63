"""The same multi-channel data in both stores: the same customers, profiles and explanations."""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from dataclasses import asdict, astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.generator import generate
from graph.config import load_config
from graph.errors import IdgraphError
from graph.events import IdentifierInput, clean_event, event_from_json
from graph.identity_graph import IdentityGraph
from graph.models import Key, pair
from graph.resolver import EventResult
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from tests.conftest import empty_neo4j

PERSONS = 2000


def load(graph: IdentityGraph, events: list[dict[str, Any]], now: datetime) -> None:
    """Most of the history through the bulk path, the rest through incremental ingest."""
    cut = len(events) * 9 // 10
    bulk = graph.bulk_load(now)
    for start in range(0, cut, 5000):
        clean = []
        for raw in events[start : min(start + 5000, cut)]:
            try:
                clean.append(clean_event(len(clean), event_from_json(raw), graph.registry, now))
            except IdgraphError:
                continue
        bulk.add(clean, [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean])
    bulk.finish()
    for start in range(cut, len(events), 250):
        graph.resolver.ingest([event_from_json(e) for e in events[start : start + 250]], now=now)


def customers(graph: IdentityGraph) -> dict[str, frozenset[Key]]:
    groups: dict[str, set[Key]] = {}
    for key, one_id in graph.store.assignments():
        if one_id is not None:
            groups.setdefault(one_id, set()).add(key)
    return {one_id: frozenset(keys) for one_id, keys in groups.items()}


ONE_ID = re.compile(r"[0-9a-f]{32}")


def without_one_ids(value: Any, names: dict[str, Key]) -> Any:
    """OneIDs are minted at random: name each customer by its smallest identifier instead.

    A OneID merged away holds no identifiers any more; it is only counted.
    """
    if isinstance(value, dict):
        return {k: without_one_ids(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        mapped = [without_one_ids(v, names) for v in value]
        if value and all(isinstance(v, str) and ONE_ID.fullmatch(v) for v in value):
            return sorted(mapped, key=repr)  # lists of OneIDs are sorted by OneID
        return mapped
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, str) and ONE_ID.fullmatch(value):
        return "a OneID merged away"
    return value


def test_both_stores_agree_on_generated_data(tmp_path: Path, neo4j_uri: str) -> None:
    data = generate(PERSONS, seed=5)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    empty_neo4j(neo4j_uri)
    graphs = {
        "embedded": IdentityGraph(load_config(), EmbeddedStore(tmp_path / "embedded")),
        "neo4j": IdentityGraph(load_config(), Neo4jStore(neo4j_uri)),
    }
    try:
        for graph in graphs.values():
            load(graph, data.events, now)
        found = {name: customers(graph) for name, graph in graphs.items()}
        embedded, neo4j = found["embedded"], found["neo4j"]
        assert set(embedded.values()) == set(neo4j.values())
        assert len(embedded) > PERSONS // 2

        # The evidence itself: every identifier's neighbours and every pair's observations.
        stores = [graph.store for graph in graphs.values()]
        keys = [sorted(store.all_keys()) for store in stores]
        assert keys[0] == keys[1]
        around = [store.neighbours(keys[0]) for store in stores]
        assert around[0] == around[1]
        pairs_seen = sorted({pair(a, b) for a, near in around[0].items() for b in near})
        observed = [sorted(astuple(o) for o in store.observations(pairs_seen)) for store in stores]
        assert len(observed[0]) >= len(pairs_seen) and observed[0] == observed[1]

        names = {
            name: {o: min(keys) for o, keys in groups.items()} for name, groups in found.items()
        }
        by_group = {name: {keys: o for o, keys in groups.items()} for name, groups in found.items()}
        for keys in sorted(embedded.values(), key=min):
            profiles = [
                graphs[name].profile(by_group[name][keys]) for name in ("embedded", "neo4j")
            ]
            shown = [
                without_one_ids(asdict(p), names[name])
                for name, p in zip(("embedded", "neo4j"), profiles, strict=True)
                if p is not None
            ]
            assert len(shown) == 2 and shown[0] == shown[1], keys

        every = sorted({k for keys in embedded.values() for k in keys})
        pick = random.Random(3)
        pairs = [(pick.choice(every), pick.choice(every)) for _ in range(150)]
        pairs += [tuple(sorted(keys)[:2]) for keys in embedded.values() if len(keys) > 1][:150]
        for a, b in pairs:
            explained = [
                without_one_ids(
                    asdict(graph.explain(IdentifierInput(*a), IdentifierInput(*b))),
                    names[name],
                )
                for name, graph in graphs.items()
            ]
            assert explained[0] == explained[1], (a, b)
    finally:
        for graph in graphs.values():
            graph.close()


def partition_of(mapping: Path) -> set[frozenset[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = {}
    with mapping.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["one_id"]:
                groups.setdefault(row["one_id"], set()).add((row["type"], row["value"]))
    return {frozenset(g) for g in groups.values()}


def test_an_import_resolved_in_parts_on_neo4j_equals_one_resolution(
    tmp_path: Path, neo4j_uri: str
) -> None:
    """A Neo4j transaction has a memory cap, so a big import is resolved every so many events.

    The first part goes the first-load way and the rest the general way; the
    customers must be those of one resolution of everything (embedded store).
    """
    source = tmp_path / "events.ndjson"
    events = generate(400, seed=9).events
    source.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), "utf-8")
    idgraph = str(Path(sys.executable).with_name("idgraph"))

    def run(*args: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            [idgraph, *args], capture_output=True, text=True, timeout=300, env=env
        )
        assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: some lines rejected

    run("import", str(source), "--data-dir", str(tmp_path / "one"), "--quiet")
    run("export", str(tmp_path / "one.csv"), "--data-dir", str(tmp_path / "one"))
    empty_neo4j(neo4j_uri)
    neo4j = ("--neo4j-uri", neo4j_uri, "--data-dir", str(tmp_path / "n"))
    parts = ("--neo4j-resolve-every", "1200", "--batch-size", "500")
    run("import", str(source), *neo4j, *parts, "--quiet")
    run("export", str(tmp_path / "parts.csv"), *neo4j)
    assert len(events) > 3 * 1200  # at least three parts after the first
    assert partition_of(tmp_path / "parts.csv") == partition_of(tmp_path / "one.csv")
