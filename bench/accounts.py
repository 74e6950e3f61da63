"""Account linking against ground truth, and the decision-unit request's latency.

    python -m bench.accounts --companies 300

Generates B2B data (``bench.b2b``), creates the real companies' accounts,
sends the events through ``ingestEvents``' path in batches of 500, then:

- *precision*: of the account links idgraph made, the share that join a
  person to the company they work at (a look-alike domain, free mail or a
  subsidiary's domain linked to the wrong account would count against it);
- *recall*: of the links the evidence supports (a CRM event naming the
  account, a CRM-verified email on its domain), the share idgraph made;
- the p50/p95 of one GraphQL request for the decision unit of the account
  with the most contacts (200 by default), over HTTP in process, beside a
  request for the same account's name alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from bench.b2b import B2BData, generate_b2b
from graph.accounts.book import AccountInput
from graph.config import load_config
from graph.events import event_from_json
from graph.identifiers import IdentifierStatus
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore
from service.app import create_app
from service.settings import Settings

BATCH = 500
UNIT = """query($id: ID!) { account(id: $id) { decisionUnit { template completeness missingRoles
  roles { role required weight completeness members { confidence source since
    contact { oneId title seniority } } }
  suggestions { role confidence reason contact { oneId title department } } } } }"""
NAME = "query($id: ID!) { account(id: $id) { id name } }"


def load(graph: IdentityGraph, data: B2BData) -> float:
    """Accounts, then events; returns the events' seconds."""
    for a in data.accounts:
        graph.accounts.upsert_account(
            AccountInput(
                a["id"],
                a["name"],
                a["domains"],
                a["industry"],
                None,
                a["region"],
                a["parentId"],
                parent_given=True,
            ),
            "bench",
        )
    events = [event_from_json(e) for e in data.events]
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        graph.ingest(events[start : start + BATCH])
    return time.perf_counter() - started


def links_made(graph: IdentityGraph, data: B2BData) -> tuple[set[tuple[str, str]], int]:
    """(person, account) for every contact of every account, and how many contacts there were."""
    email_to_pid = {}
    for pid, email in data.emails.items():
        n = graph.registry.normalise("email", email)
        if n.status is IdentifierStatus.VALID:
            email_to_pid[n.key] = pid
    holders = graph._consistent(lambda view: view.nodes(list(email_to_pid)))
    pid_of = {h.one_id: email_to_pid[k] for k, h in holders.items() if h.one_id}
    accounts = graph.accounts.accounts([a["id"] for a in data.accounts])
    made, count = set(), 0
    for account_id, contacts in graph.accounts.contacts(accounts.values()).items():
        for c in contacts:
            count += 1
            made.add((pid_of.get(c.one_id, f"unknown:{c.one_id}"), account_id))
    return made, count


def timed(client: TestClient, query: str, account_id: str, rounds: int) -> list[float]:
    headers = {"Authorization": "Bearer bench"}
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(
            "/graphql", json={"query": query, "variables": {"id": account_id}}, headers=headers
        )
        took.append(time.perf_counter() - started)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    return took


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=300)
    parser.add_argument("--largest", type=int, default=200, help="contacts of the largest account")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j database instead of the embedded store")
    args = parser.parse_args()
    data = generate_b2b(args.companies, args.seed, args.largest)
    with tempfile.TemporaryDirectory() as tmp:
        store: GraphStore = (
            Neo4jStore(args.neo4j_uri) if args.neo4j_uri else EmbeddedStore(Path(tmp) / "data")
        )
        graph = IdentityGraph(load_config(None), store)
        if store.node_count():
            graph.close()
            raise SystemExit("the Neo4j database is not empty; run into an empty one")
        took = load(graph, data)
        made, contacts = links_made(graph, data)
        right = {(pid, a) for pid, a in made if data.works_at.get(pid) == a}
        found = made & data.supported
        lookalikes = sum(1 for c in data.companies if not c.account)
        print(
            f"{len(data.accounts)} accounts ({lookalikes} look-alike companies without one),"
            f" {len(data.works_at)} people at companies, {len(data.events)} events"
            f" ({len(data.events) / took:,.0f} events/s with account links)"
        )
        print(
            f"links made: {len(made)} ({contacts} contacts);"
            f" supported by evidence: {len(data.supported)}"
        )
        wrong = sorted(made - right)
        precision = len(right) / max(1, len(made))
        print(f"precision {precision:.4f}  (wrong: {len(wrong)} {wrong[:5]})")
        missed = sorted(data.supported - made)[:5]
        recall = len(found) / max(1, len(data.supported))
        print(f"recall    {recall:.4f}  (missed: {len(data.supported - made)} {missed})")
        size = sum(1 for _, a in made if a == data.largest)
        settings = Settings(data_dir=Path(tmp) / "service", admin_key="bench")
        with TestClient(create_app(settings, graph=graph)) as client:  # closes the graph
            timed(client, UNIT, data.largest, 20)  # warm up
            name = timed(client, NAME, data.largest, args.rounds)
            unit = timed(client, UNIT, data.largest, args.rounds)
        print(
            f"decision unit of {data.largest} ({size} contacts): p50"
            f" {statistics.median(unit) * 1000:.1f} ms, p95 {p95(unit) * 1000:.1f} ms;"
            f" the account's name alone: p50 {statistics.median(name) * 1000:.1f} ms,"
            f" p95 {p95(name) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
