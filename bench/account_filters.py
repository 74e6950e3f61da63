"""A sales page's account list at scale: ``accounts(filter:)`` and ``accounts(where:)``.

    python -m bench.account_filters --accounts 200000

Writes ``--accounts`` accounts (40 industries, 30 regions, spread evenly at
random) into an empty store through its account protocol, then times, over
GraphQL in process, the first page of 20 (with its ``totalCount``) for: no
filter; a filter on industry; on region; on both; a ``where`` on industry;
a ``where`` on region inside an industry filter; a ``where`` the store
cannot narrow (``not`` an industry), which reads every account. Each line is
the median of ``--rounds`` requests (fewer for the one that reads all).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from graph.accounts.models import Account, AccountFilter, AccountWrite
from graph.config import load_config
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore
from service.app import create_app
from service.settings import Settings

CHUNK = 5_000  # accounts a write holds
PAGE = """query($f: AccountFilter, $w: JSON) {
  accounts(filter: $f, where: $w, first: 20) { totalCount edges { node { id name } } } }"""


def write_accounts(store: GraphStore, count: int, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for start in range(0, count, CHUNK):
        put = [
            Account(
                id=f"acc{n:07d}",
                name=f"Company {n}",
                domains=(),
                industry=f"industry-{rng.randrange(40)}",
                size_band=None,
                region=f"region-{rng.randrange(30)}",
                parent_id=None,
                created_at=now,
                updated_at=now,
            )
            for n in range(start, min(count, start + CHUNK))
        ]
        store.account_store.write_accounts(AccountWrite(put=put))


def median_ms(client: TestClient, variables: dict[str, Any], rounds: int) -> tuple[float, int]:
    headers = {"Authorization": "Bearer bench"}
    took, total = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(
            "/graphql", json={"query": PAGE, "variables": variables}, headers=headers
        )
        took.append(time.perf_counter() - started)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, response.text
        total = body["data"]["accounts"]["totalCount"]
    return statistics.median(took) * 1000, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j database instead of the embedded store")
    args = parser.parse_args()
    industry = {"field": "industry", "op": "eq", "value": "industry-7"}
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("no filter", {}, args.rounds),
        ("filter: industry", {"f": {"industry": "industry-7"}}, args.rounds),
        ("filter: region", {"f": {"region": "region-3"}}, args.rounds),
        (
            "filter: industry and region",
            {"f": {"industry": "industry-7", "region": "region-3"}},
            args.rounds,
        ),
        ("where: industry eq", {"w": industry}, args.rounds),
        (
            "where: region eq, filter: industry",
            {
                "w": {"field": "region", "op": "eq", "value": "region-3"},
                "f": {"industry": "industry-7"},
            },
            args.rounds,
        ),
        ("where: not industry eq (reads all)", {"w": {"not": industry}}, max(1, args.rounds // 10)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store: GraphStore = (
            Neo4jStore(args.neo4j_uri) if args.neo4j_uri else EmbeddedStore(Path(tmp) / "data")
        )
        if store.account_store.account_page(AccountFilter(), None, 1)[1]:
            store.close()
            raise SystemExit("the Neo4j database holds accounts; run into an empty one")
        started = time.perf_counter()
        write_accounts(store, args.accounts, args.seed)
        wrote = time.perf_counter() - started
        graph = IdentityGraph(load_config(None), store)
        settings = Settings(data_dir=Path(tmp) / "unused", admin_key="bench")
        print(f"{args.accounts:,} accounts written in {wrote:.1f} s")
        print("| request (first page of 20, with totalCount) | matching | median ms |")
        print("|---|---|---|")
        with TestClient(create_app(settings, graph)) as client:  # closes the graph
            for label, variables, rounds in cases:
                median_ms(client, variables, 2)  # warm
                took, total = median_ms(client, variables, rounds)
                print(f"| {label} | {total:,} | {took:.2f} |")


if __name__ == "__main__":
    main()
