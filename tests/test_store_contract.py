"""The store protocol, run against every store: what the resolver and API rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graph.models import (
    ChangeSet,
    CustomerRecord,
    EdgeObservation,
    HistoryEntry,
    NodeRecord,
    StoredEvent,
    pair,
)
from graph.store.protocol import GraphStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C, D = (
    ("phone", "+8613800138000"),
    ("email", "a@x.com"),
    ("cookie_id", "ck-1"),
    ("device_id", "kiosk"),
)


def seed(store: GraphStore) -> None:
    changes = ChangeSet(
        new_nodes=[
            NodeRecord(A, 1, T0, T0),
            NodeRecord(B, 2, T0, T0),
            NodeRecord(C, 3, T0, T0),
            NodeRecord(D, 4, T0, T0, shared=True),
        ],
        # The evidence is the events; observations say the same edge by edge.
        observations=[
            EdgeObservation(*pair(A, B), "crm", T0, T0),
            EdgeObservation(*pair(B, C), "web", T0 + timedelta(days=1), T0 + timedelta(days=1)),
            EdgeObservation(*pair(C, D), "app", T0, T0),
        ],
        events=[
            StoredEvent(1, "e1", "crm", T0, T0, [A, B], {"name": "王芳"}),
            StoredEvent(2, "e2", "web", T0 + timedelta(days=1), T0, [B, C], {}),
            StoredEvent(3, "e3", "app", T0, T0, [C, D], {}),
        ],
        assignments={A: "one", B: "one", C: "one"},
        new_customers=[CustomerRecord("one", 1, T0), CustomerRecord("old", 0, T0)],
        history=[HistoryEntry("merge", "one", ["old"], T0, "ingest", ["e1"], [{"a": "x"}])],
    )
    store.apply(changes)
    store.apply(ChangeSet(customer_updates=[CustomerRecord("old", 0, T0, merged_into="one")]))


def test_nodes_edges_and_neighbours(store: GraphStore) -> None:
    seed(store)
    nodes = store.nodes([A, D, ("phone", "unknown")])
    assert set(nodes) == {A, D}
    assert nodes[A].one_id == "one" and nodes[A].seq == 1 and nodes[D].shared
    assert store.existing_pairs([pair(A, B), pair(A, C)]) == {pair(A, B)}
    assert store.neighbours([B])[B] == {A, C}
    assert store.counters() == (4, 1, 3)
    assert store.healthy()


def test_neighbourhood_is_neighbours_with_their_records(store: GraphStore) -> None:
    seed(store)
    # A second source seeing A and B together is a second relationship, not a second neighbour.
    store.apply(ChangeSet(observations=[EdgeObservation(*pair(A, B), "app", T0, T0)]))
    unknown = ("phone", "unknown")
    around, records = store.neighbourhood([B, C, unknown])
    assert around == {B: {A, C}, C: {B, D}, unknown: set()}
    assert records == store.nodes([A, B, C, D])
    assert records[A].one_id == "one" and records[D].one_id is None and records[D].shared


def test_component_stops_at_unlinkable_nodes_and_honours_overrides(store: GraphStore) -> None:
    seed(store)
    nodes, edges = store.component([A], {})
    assert nodes == {A, B, C} and edges == {pair(A, B), pair(B, C)}
    nodes, edges = store.component([A], {B: False})
    assert nodes == {A} and edges == set()
    nodes, _ = store.component([D], {})
    assert nodes == {D}, "an unlinkable seed comes back alone"
    nodes, edges = store.component([A], {D: True})
    assert D in nodes and pair(C, D) in edges


def test_customers_members_aliases(store: GraphStore) -> None:
    seed(store)
    assert store.members(["one"]) == {"one": {A, B, C}}
    assert store.customers(["one", "nope"])["one"].seq == 1
    assert store.canonical_one_id("old") == "one"
    assert store.canonical_one_id("one") == "one"
    assert store.canonical_one_id("never") is None
    assert store.aliases("one") == ["old"]


def test_an_alias_given_back_or_pointed_elsewhere(store: GraphStore) -> None:
    seed(store)
    store.apply(ChangeSet(new_customers=[CustomerRecord("new", 2, T0, anchor=3)]))
    store.apply(
        ChangeSet(customer_updates=[CustomerRecord("old", 0, T0, merged_into="new", anchor=2)])
    )
    assert store.canonical_one_id("old") == "new"
    assert store.aliases("one") == [] and store.aliases("new") == ["old"]
    assert [(c.one_id, c.merged_into) for c in store.anchored([2, 3, 9])] == [
        ("new", None),
        ("old", "new"),
    ]
    store.apply(ChangeSet(customer_updates=[CustomerRecord("old", 0, T0, anchor=2)]))
    assert store.canonical_one_id("old") == "old"
    assert store.aliases("new") == []
    assert store.customers(["old"])["old"].anchor == 2


def test_events_observations_history(store: GraphStore) -> None:
    seed(store)
    assert store.known_events(["e1", "e9"]) == {"e1"}
    events = store.events_for([A])
    assert [e.event_id for e in events] == ["e1"] and events[0].traits == {"name": "王芳"}
    assert [e.event_id for e in store.events_for([B, C])] == ["e1", "e2", "e3"]
    only = store.events_for([B, C], traits_only=True)  # what the audience index reads
    assert [(e.event_id, e.traits) for e in only] == [("e1", {"name": "王芳"})]
    store.apply(
        ChangeSet(
            events=[
                StoredEvent(4, "e4", "web", T0 - timedelta(days=1), T0, [C, B], {}),
                StoredEvent(5, "e5", "web", T0 + timedelta(days=3), T0, [B, C], {}),
            ]
        )
    )
    (seen,) = store.observations([pair(B, C)])
    assert (seen.count, seen.first_seen, seen.last_seen) == (
        3,
        T0 - timedelta(days=1),
        T0 + timedelta(days=3),
    )
    (entry,) = store.history(["old"])
    assert entry.kind == "merge" and entry.others == ["old"] and entry.evidence == [{"a": "x"}]


def test_removal_deletes_the_node_and_its_evidence(store: GraphStore) -> None:
    seed(store)
    store.apply(
        ChangeSet(
            removed_nodes=[B], assignments={C: "two"}, new_customers=[CustomerRecord("two", 2, T0)]
        )
    )
    assert B not in store.nodes([B])
    assert store.neighbours([A])[A] == set() and store.neighbours([C])[C] == {D}
    assert store.members(["one", "two"]) == {"one": {A}, "two": {C}}
    assert [e.keys for e in store.events_for([A])] == [[A]]
    assert store.observations([pair(A, B)]) == []


def test_apply_is_all_or_nothing(store: GraphStore) -> None:
    seed(store)
    broken = ChangeSet(
        new_nodes=[NodeRecord(("email", "new@x.com"), 5, T0, T0)],
        events=[StoredEvent(4, "e1", "web", T0, T0, [("email", "new@x.com")], {})],
    )
    with pytest.raises(Exception):  # noqa: B017 - each store raises its own driver error
        store.apply(broken)
    assert store.nodes([("email", "new@x.com")]) == {}
    assert store.counters() == (4, 1, 3)
    assert sorted(k for k, _ in store.assignments()) == sorted([A, B, C, D])
