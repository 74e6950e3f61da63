"""A rebuild written in parts (a store that caps its transactions) equals one written whole."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.models import ChangeSet, Key
from graph.parts import in_parts
from graph.store.embedded import EmbeddedStore
from service.settings import Settings
from tests.conftest import make_settings
from tests.test_properties import Partition, partition, tight_config


def events(seed: int) -> list[EventInput]:
    rng = random.Random(seed)
    universe = [
        *[("phone", f"1380013{n:04d}") for n in range(30)],
        *[("email", f"u{n}@example.com") for n in range(20)],
        *[("device_id", f"device-{n:04d}") for n in range(15)],
        *[("cookie_id", f"cookie-{n:04d}") for n in range(30)],
        *[("crm_id", f"CRM{n}") for n in range(6)],
    ]
    return [
        EventInput(
            rng.choice(["web", "app"]),
            [IdentifierInput(*rng.choice(universe)) for _ in range(rng.randint(1, 3))],
            event_id=f"e{n}",
        )
        for n in range(250)
    ]


def rebuilt(settings: Settings, most: int | None) -> tuple[Partition, frozenset[Key]]:
    """Ingest under the default rules, then rebuild under tighter ones, as after a config change.

    ``most`` identifiers per part, or the store's own setting with None.
    """
    graph = IdentityGraph(load_config(), settings.open_store())
    try:
        for start in range(0, 250, 50):
            graph.ingest(events(4)[start : start + 50])
    finally:
        graph.close()
    store = settings.open_store()
    if most is not None:
        store.resolve_every = most
    graph = IdentityGraph(tight_config(), store)
    try:
        graph.rebuild()
        found = partition(graph)
        for key, one_id in graph.store.assignments():
            if one_id is not None:  # every customer's OneID is its own, none an alias
                assert graph.store.canonical_one_id(one_id) == one_id, key
        return found
    finally:
        graph.close()


def test_a_rebuild_in_parts_gives_the_customers_of_one_in_one_part(
    tmp_path: Path, store_uri: str | None
) -> None:
    expected = rebuilt(make_settings(tmp_path / "whole"), None)  # embedded: one part
    assert rebuilt(make_settings(tmp_path / "parts", neo4j_uri=store_uri), 7) == expected


def split_customers(parts: list[ChangeSet]) -> set[str]:
    seen: dict[str, int] = {}
    split: set[str] = set()
    for n, part in enumerate(parts):
        touched = {o for o in part.assignments.values() if o}
        touched |= {x.one_id for x in [*part.new_customers, *part.customer_updates]}
        for one_id in touched:
            if seen.setdefault(one_id, n) != n:
                split.add(one_id)
    return split


def test_parts_never_split_a_customer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path / "data")
    graph = IdentityGraph(load_config(), settings.open_store())
    for start in range(0, 250, 50):
        graph.ingest(events(9)[start : start + 50])
    graph.close()
    captured: list[ChangeSet] = []
    apply = EmbeddedStore.apply

    def capture(store: EmbeddedStore, changes: ChangeSet) -> None:
        captured.append(changes)
        apply(store, changes)

    monkeypatch.setattr(EmbeddedStore, "apply", capture)
    graph = IdentityGraph(tight_config(), settings.open_store())
    try:
        graph.rebuild()
    finally:
        graph.close()
    (changes,) = captured
    parts = in_parts(changes, 5)
    assert len(parts) > 3
    assert not split_customers(parts)
    assert sorted(k for p in parts for k in p.node_updates) == sorted(changes.node_updates)
    assert sorted(k for p in parts for k in p.assignments) == sorted(changes.assignments)
    assert sum(len(p.new_customers) for p in parts) == len(changes.new_customers)
    assert sum(len(p.history) for p in parts) == len(changes.history)
    assert sum(len(p.customer_updates) for p in parts) == len(changes.customer_updates)
    assert [p.settles_deferred for p in parts] == [False] * (len(parts) - 1) + [True]
