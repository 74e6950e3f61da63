"""Segment speed: a four-condition count beside DuckDB and plain Python, pages, breakdowns.

    python -m bench.segments [--persons 53000] [--requests 200] [--neo4j-uri bolt://...]

``--persons`` generated people with about eight orders and page views each
(53,000 give about 100,000 profiles and 1M events) are loaded by ``idgraph import``; the twenty
rule tags of ``bench.tag_rules`` and ten saved segments are defined and
every customer tagged; then ``idgraph serve`` answers over HTTP, one
keep-alive client asking one request after another:

1. ``profileCount`` of a four-condition cross (two tags, a trait, and a
   windowed aggregate that is a tag), p50 and p95, beside (a) DuckDB counting
   the same conditions over the same profiles held as an in-memory table and
   (b) the rule evaluated in plain Python over the same profiles as dicts,
   both in this process. The first question makes the index: timed apart.
2. A segment's ``members`` page 1 and page 50, 100 a page: p95 of each.
3. A segment's ``breakdown(by: "city")``: p95, with the segment's size.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.tag_rules import definitions
from bench.tags import load_behaviour, open_store
from graph.config import load_config
from graph.identity_graph import IdentityGraph
from graph.tags.definitions import parse_definition
from tests.server import running_server

IDGRAPH = str(Path(sys.executable).with_name("idgraph"))
KEY = "bench"
FOUR = {
    "all": [
        {"tag": "favourite-category", "op": "eq", "value": "护肤"},
        {"tag": "spend-level", "op": "in", "value": ["high", "mid"]},
        {"trait": "city", "op": "eq", "value": "上海"},
        {"tag": "q4-spend", "op": "gt", "value": 500},
    ]
}
SEGMENTS: dict[str, Any] = {
    "four": FOUR,
    "spenders": {"tag": "spend-level", "op": "in", "value": ["high", "mid"]},
    "tier1": {"tag": "tier1-city", "op": "has"},
    "q4-buyers": {"tag": "q4-buyer", "op": "has"},
    "skincare": {"tag": "favourite-category", "op": "eq", "value": "护肤"},
    "vip-shanghai": {"all": [{"tag": "vip", "op": "has"}, {"tag": "shanghai", "op": "has"}]},
    "win-back": {"tag": "win-back", "op": "has"},
    "singles-day": {"tag": "singles-day", "op": "has"},
    "big-h1": {
        "all": [{"tag": "big-basket-h1", "op": "has"}, {"not": {"tag": "q4-buyer", "op": "has"}}]
    },
    "multichannel": {"tag": "multichannel", "op": "has"},
}


def prepare(
    persons: int, data_dir: Path, neo4j_uri: str | None
) -> tuple[list[dict[str, Any]], int, float]:
    """Load, define and tag; the profiles as plain rows, the event count, seconds taken."""
    began = time.perf_counter()
    events = load_behaviour(persons, data_dir, neo4j_uri)
    graph = IdentityGraph(load_config(), open_store(data_dir, neo4j_uri))
    try:
        for rule in definitions():
            graph.tags.define(parse_definition(**rule))
        for segment_id, where in SEGMENTS.items():
            graph.segments.define(segment_id, segment_id, None, where)
        graph.tags.retag()
        rows = profile_rows(graph)
    finally:
        graph.close()
    return rows, events, time.perf_counter() - began


def profile_rows(graph: IdentityGraph) -> list[dict[str, Any]]:
    """Every customer's tags and traits, as the baselines hold them."""
    customers = graph.tags.customers()
    rows = []
    for start in range(0, len(customers), 1000):
        part = customers[start : start + 1000]
        tags = graph.store.tag_store.customer_tags(part)
        rollups = graph.tagger.rollups(part, graph.store)
        for one_id, rollup in rollups.items():
            held = {t: x.value for t, x in tags.get(one_id, {}).items()}
            rows.append({"tags": held, "traits": rollup.surviving_traits({})})
    return rows


def holds(condition: dict[str, Any], row: dict[str, Any]) -> bool:
    """The rule over one row, in plain Python: the brute force the index is measured against."""
    if "all" in condition:
        return all(holds(c, row) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, row) for c in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], row)
    seen = (
        row["tags"].get(condition["tag"])
        if "tag" in condition
        else row["traits"].get(condition["trait"])
    )
    op, value = condition["op"], condition.get("value")
    if seen is None:
        return op == "missing"
    if op in ("has", "exists"):
        return True
    if op == "eq":
        return bool(seen == value)
    if op == "in":
        return seen in value
    if isinstance(seen, bool) or not isinstance(seen, int | float):
        return False
    return {"gt": seen > value, "gte": seen >= value, "lt": seen < value, "lte": seen <= value}[op]


def timed(work: Callable[[], Any], times: int) -> tuple[float, float, Any]:
    """Median and p95 in ms of ``times`` calls, and the last answer."""
    took = []
    answer = None
    for _ in range(times):
        began = time.perf_counter()
        answer = work()
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return statistics.median(took), took[int(0.95 * (len(took) - 1))], answer


class Client:
    """One keep-alive connection, as an app's backend holds one."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)

    def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables})
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        self.connection.request("POST", "/graphql", body, headers)
        found: dict[str, Any] = json.loads(self.connection.getresponse().read())
        if "errors" in found:
            raise RuntimeError(found["errors"])
        return found["data"]


COUNT = "query($w: JSON) { profileCount(where: $w) }"
MEMBERS = """query($id: ID!, $after: String) { segment(id: $id) {
  members(first: 100, after: $after) { edges { oneId } pageInfo { endCursor } } } }"""
SIZES = "{ segments { id count } }"
BREAKDOWN = 'query($id: ID!) { segment(id: $id) { count breakdown(by: "city") { value count } } }'


def duckdb_counter(rows: list[dict[str, Any]]) -> Callable[[], int]:
    import duckdb
    import pandas as pd

    table = pd.DataFrame(
        {
            "fav": [r["tags"].get("favourite-category") for r in rows],
            "level": [r["tags"].get("spend-level") for r in rows],
            "q4": [r["tags"].get("q4-spend") for r in rows],
            "city": [r["traits"].get("city") for r in rows],
        }
    )
    connection = duckdb.connect()
    connection.register("profiles", table)
    query = (
        "SELECT count(*) FROM profiles WHERE fav = '护肤' AND level IN ('high', 'mid')"
        " AND city = '上海' AND q4 > 500"
    )

    def count() -> int:
        found = connection.execute(query).fetchone()
        assert found is not None
        return int(found[0])

    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=53_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to use instead of the embedded store")
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        rows, events, prepared = prepare(args.persons, data_dir, args.neo4j_uri)
        store = "Neo4j" if args.neo4j_uri else "embedded"
        print(
            f"{len(rows):,} profiles, {events:,} events, 20 tags and 10 segments, {store} store"
            f" (loaded and tagged in {prepared:.0f} s)\n"
        )
        brute = timed(lambda: sum(holds(FOUR, r) for r in rows), max(5, n // 20))
        ducked = timed(duckdb_counter(rows), n)
        extra = ["--neo4j-uri", args.neo4j_uri] if args.neo4j_uri else []
        with running_server(data_dir, KEY, extra) as (url, _):
            client = Client(url)
            began = time.perf_counter()
            first = client(COUNT, {"w": FOUR})["profileCount"]
            made = time.perf_counter() - began
            api = timed(lambda: client(COUNT, {"w": FOUR})["profileCount"], n)
            sizes = {s["id"]: s["count"] for s in client(SIZES, {})["segments"]}
            # The segment nearest 30,000 members: the size the goals speak of.
            chosen = min(sizes, key=lambda s: abs(sizes[s] - 30_000))
            cursors: list[str | None] = [None]
            while len(cursors) < 50:
                page = client(MEMBERS, {"id": chosen, "after": cursors[-1]})
                cursors.append(page["segment"]["members"]["pageInfo"]["endCursor"])
            page1 = timed(lambda: client(MEMBERS, {"id": chosen, "after": None}), n)
            page50 = timed(lambda: client(MEMBERS, {"id": chosen, "after": cursors[49]}), n)
            broken = timed(lambda: client(BREAKDOWN, {"id": chosen}), n)
        assert first == api[2] == ducked[2] == brute[2], (first, api[2], ducked[2], brute[2])
        size = sizes[chosen]
    print("| measure | p50 ms | p95 ms |")
    print("|---|---|---|")
    print(
        f"| `profileCount`, four conditions ({first:,} match), through the API |"
        f" {api[0]:.2f} | {api[1]:.2f} |"
    )
    print(f"| (a) DuckDB, same conditions, in-memory table | {ducked[0]:.2f} | {ducked[1]:.2f} |")
    print(f"| (b) plain Python over the profiles as dicts | {brute[0]:.1f} | {brute[1]:.1f} |")
    print(f"| first question (the index made from the store) | {made * 1000:,.0f} | |")
    print(
        f"| `segment.members` page 1 (100 a page, {size:,} members) |"
        f" {page1[0]:.2f} | {page1[1]:.2f} |"
    )
    print(f"| `segment.members` page 50 | {page50[0]:.2f} | {page50[1]:.2f} |")
    print(
        f'| `segment.breakdown(by: "city")`, {size:,} members | {broken[0]:.2f} | {broken[1]:.2f} |'
    )
    print(
        f"\nAPI p95 / DuckDB median: {api[1] / ducked[0]:.2f};"
        f" plain Python median / API p95: {brute[0] / api[1]:.0f}x;"
        f" page 50 / page 1 p95: {page50[1] / page1[1]:.2f}"
    )


if __name__ == "__main__":
    main()
