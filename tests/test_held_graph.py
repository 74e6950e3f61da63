"""A Neo4j writer keeps what its batches read and wrote: it must answer as the database would."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.generator import generate
from graph.config import load_config
from graph.events import IdentifierInput, event_from_json
from graph.identity_graph import IdentityGraph
from graph.models import ChangeSet, CustomerRecord, Key, NodeRecord, StoredEvent
from graph.store.embedded import EmbeddedStore
from graph.store.held_graph import HeldGraph
from graph.store.neo4j import Neo4jStore
from tests.conftest import empty_neo4j, event

AT = datetime(2026, 6, 1, tzinfo=UTC)


def node(key: Key, seq: int, one_id: str | None = None) -> NodeRecord:
    return NodeRecord(key, seq, AT, AT, one_id=one_id)


def stored_event(seq: int, *keys: Key) -> StoredEvent:
    return StoredEvent(seq, f"e{seq}", "crm", AT, AT, list(keys), {}, [])


P, A, C = ("phone", "+8613800000001"), ("email", "a@example.com"), ("cookie_id", "cookie-1")


def test_what_is_held_answers_only_in_a_batch_that_follows_the_last_one_before_it_writes() -> None:
    held = HeldGraph()
    held.begin(1)
    held.keep_records([node(P, 1, "X")])
    held.keep_neighbours({P: {A}}, {A: node(A, 2, "X")})
    held.keep_members({"X": {P, A}})
    assert held.neighbours([P]) == ({P: {A}}, [])
    held.wrote()
    assert held.records([P]) == ({}, [P])  # the batch's own writes are unseen by what is held
    held.finished(1)
    assert held.records([P]) == ({}, [P])  # outside a batch: nothing
    held.begin(2)
    assert held.records([P])[0][P].one_id == "X"
    assert held.members(["X"]) == ({"X": {P, A}}, [])
    held.finished(2)
    held.begin(4)  # batch 3 was another process's
    assert held.records([P, A]) == ({}, [P, A])
    assert held.members(["X"]) == ({}, ["X"])


def test_a_committed_change_is_held_as_the_database_has_it() -> None:
    held = HeldGraph()
    held.begin(1)
    held.keep_records([node(P, 1, "X"), node(A, 2, "Y")])
    held.keep_neighbours({P: set(), A: set()}, {})
    held.keep_members({"X": {P}, "Y": {A}})
    held.wrote()
    # One event sees P, A and a new cookie: Y is merged into X, the cookie joins X.
    changes = ChangeSet(
        new_nodes=[node(C, 3)],
        node_updates={A: node(A, 2, "Y")},
        events=[stored_event(1, P, A, C)],
        assignments={A: "X", C: "X"},
        customer_updates=[CustomerRecord("Y", 2, AT, merged_into="X")],
    )
    held.applied(changes)
    held.finished(1)
    held.begin(2)
    around, missing = held.neighbours([P, A, C])
    assert around == {P: {A, C}, A: {P, C}, C: {P, A}} and not missing
    records, _ = held.records([P, A, C])
    assert {k: r.one_id for k, r in records.items()} == {P: "X", A: "X", C: "X"}
    assert held.members(["X", "Y"]) == ({"X": {P, A, C}, "Y": set()}, [])
    assert held.pairs([(A, P), (("phone", "2"), P)]) == ({(A, P)}, [])
    # A removal rewrites events and edges it does not list: nothing is held after it.
    held.wrote()
    held.applied(ChangeSet(removed_nodes=[C]))
    held.finished(2)
    held.begin(3)
    assert held.records([P]) == ({}, [P])


def test_what_is_held_is_bounded() -> None:
    held = HeldGraph(most=8)
    held.begin(1)
    held.keep_records([node(("cookie_id", str(n)), n) for n in range(20)])
    held.keep_members({f"O{n}": {("cookie_id", str(n))} for n in range(20)})
    found, missing = held.records([("cookie_id", str(n)) for n in range(20)])
    assert sorted(found) == [("cookie_id", str(n)) for n in range(12, 20)]
    assert len(missing) == 12
    assert sorted(held.members([f"O{n}" for n in range(20)])[0]) == ["O18", "O19"]


def test_a_batch_after_another_process_wrote_reads_the_database(neo4j_uri: str) -> None:
    """Two services on one Neo4j: each batch of one sees what the other wrote before it."""
    empty_neo4j(neo4j_uri)
    one = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    two = IdentityGraph(load_config(), Neo4jStore(neo4j_uri))
    try:
        one.ingest([event_from_json(event("e1", "crm", P, A))])
        two.ingest([event_from_json(event("e2", "web", A, C))])
        with one.store.exclusive():
            assert one.store.neighbours([A])[A] == {P, C}
        device = ("device_id", "d1")
        one.ingest([event_from_json(event("e3", "app", C, device))])
        owners = {k: r.one_id for k, r in one.store.nodes([P, A, C, device]).items()}
        assert len(set(owners.values())) == 1 and None not in owners.values()
    finally:
        one.close()
        two.close()


def test_a_writer_holding_what_it_wrote_resolves_as_the_embedded_store(
    tmp_path: Path, neo4j_uri: str
) -> None:
    """Batch after batch with removals between them: the same customers, flags and edges."""
    empty_neo4j(neo4j_uri)
    events = generate(300, seed=11).events
    graphs = [
        IdentityGraph(load_config(), EmbeddedStore(tmp_path / "embedded")),
        IdentityGraph(load_config(), Neo4jStore(neo4j_uri)),
    ]
    pick = random.Random(4)
    try:
        for n, start in enumerate(range(0, len(events), 60)):
            chunk = events[start : start + 60]
            now = AT + timedelta(minutes=n)
            for graph in graphs:
                graph.resolver.ingest([event_from_json(e) for e in chunk], now=now)
            if n % 5 == 4:
                keys = sorted(k for k, _ in graphs[0].store.assignments())
                gone = IdentifierInput(*pick.choice(keys))
                for graph in graphs:
                    graph.remove_identifier(gone)
        keys = [sorted(graph.store.all_keys()) for graph in graphs]
        assert keys[0] == keys[1]
        records = [graph.store.nodes(keys[0]) for graph in graphs]
        flags = [
            {k: (r.blocked, r.shared, r.strong_neighbours, r.first_seen) for k, r in found.items()}
            for found in records
        ]
        assert flags[0] == flags[1]
        groups: list[set[frozenset[Key]]] = []
        for found in records:
            by_one_id: dict[str, set[Key]] = {}
            for key, record in found.items():
                if record.one_id is not None:
                    by_one_id.setdefault(record.one_id, set()).add(key)
            groups.append({frozenset(g) for g in by_one_id.values()})
        assert groups[0] == groups[1] and len(groups[0]) > 100
        assert graphs[0].store.neighbours(keys[0]) == graphs[1].store.neighbours(keys[0])
    finally:
        for graph in graphs:
            graph.close()
