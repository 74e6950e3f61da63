"""An import into a store that caps a transaction: parts bounded in events and new identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from graph.config import load_config
from graph.events import EventInput, IdentifierInput, clean_event
from graph.identity_graph import IdentityGraph
from graph.models import ChangeSet, FirstLoad
from graph.resolver import EventResult
from tests.conftest import make_settings

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MOST = 10


def person(n: int) -> list[IdentifierInput]:
    return [
        IdentifierInput("phone", f"1380013{n:04d}"),
        IdentifierInput("email", f"p{n}@example.com"),
        IdentifierInput("cookie_id", f"cookie-{n:04d}"),
    ]


def load(graph: IdentityGraph, chunks: list[list[EventInput]]) -> None:
    bulk = graph.bulk_load(NOW)
    for chunk in chunks:
        clean = [clean_event(p, e, graph.registry, NOW) for p, e in enumerate(chunk)]
        bulk.add(clean, [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean])
    bulk.finish()


@pytest.fixture
def parts(tmp_path: Path, store_uri: str | None) -> Iterator[tuple[IdentityGraph, list[int]]]:
    """A graph whose store takes at most MOST per part, and the identifiers each part created."""
    graph = IdentityGraph(load_config(), make_settings(tmp_path, neo4j_uri=store_uri).open_store())
    store: Any = graph.store
    store.resolve_every = MOST
    created: list[int] = []
    first_load, apply = store.apply_first_load, store.apply
    loading = False

    def apply_first(changes: FirstLoad) -> None:
        nonlocal loading
        created.append(len(changes.keys))
        loading = True
        try:
            first_load(changes)
        finally:
            loading = False

    def apply_part(changes: ChangeSet) -> None:
        if not loading:  # a store may write a first load as a change set
            created.append(len(changes.new_nodes))
        apply(changes)

    store.apply_first_load, store.apply = apply_first, apply_part
    try:
        yield graph, created
    finally:
        graph.close()


def test_a_chunk_of_events_that_each_bring_new_identifiers_is_cut_into_parts(
    parts: tuple[IdentityGraph, list[int]],
) -> None:
    graph, created = parts
    # One chunk of 8 events, 3 new identifiers each: 24 identifiers, fewer than MOST events.
    load(graph, [[EventInput("web", person(n), event_id=f"e{n}") for n in range(8)]])
    assert sum(created) == 24
    assert len(created) >= 3
    assert all(n <= MOST for n in created), created
    one_ids = {graph.resolve([i])[0].one_id for n in range(8) for i in person(n)}
    assert len(one_ids) == 8  # each person one customer, none split between parts


def test_events_that_bring_nothing_new_do_not_fill_a_part(
    parts: tuple[IdentityGraph, list[int]],
) -> None:
    graph, created = parts
    seen = [EventInput("web", person(0), event_id="e0")]
    again = [EventInput("app", person(0)[:2], event_id=f"again{n}") for n in range(MOST - 1)]
    load(graph, [seen + again])
    assert created == [3]  # one part: ten events, three identifiers
