"""A process that follows a data dir another process writes reads what the writer reads.

The follower opens the embedded store with ``follow=True``: it takes no
lock, writes nothing, and after each ``catch_up`` answers every read as the
writer does, whether it applied the writer's logged changes one by one or,
past a bulk load or further behind than the log reaches, read the shape
from the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import graph.store.embedded.store as embedded_store
from graph.config import load_config
from graph.errors import StoreUnavailable
from graph.events import EventInput, IdentifierInput, clean_event
from graph.identity_graph import IdentityGraph
from graph.resolver import EventResult
from graph.store.embedded import EmbeddedStore
from tests.test_snapshot import batches_of, dump, events

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[IdentityGraph, IdentityGraph]]:
    data = tmp_path / "data"
    writer = IdentityGraph(load_config(), EmbeddedStore(data))
    writer.ingest(events(7, 5))
    follower = IdentityGraph(load_config(), EmbeddedStore(data, follow=True))
    yield writer, follower
    follower.close()
    writer.close()


def catch_up(graph: IdentityGraph) -> int:
    store = graph.store
    assert isinstance(store, EmbeddedStore)
    return store.catch_up()


def test_a_follower_reads_what_the_writer_wrote_after_each_batch(
    pair: tuple[IdentityGraph, IdentityGraph],
) -> None:
    writer, follower = pair
    assert dump(follower) == dump(writer)
    for batch in batches_of(3):
        writer.ingest(batch)
        assert catch_up(follower) == writer.store.version()
        assert dump(follower) == dump(writer)
    writer.remove_identifier(IdentifierInput("device_id", "device-0003"))
    writer.remove_identifier(IdentifierInput("phone", "13800130007"))
    catch_up(follower)
    assert dump(follower) == dump(writer)


@pytest.mark.parametrize("compact_at", [1, 10**9])
def test_a_follower_several_commits_behind_applies_them_in_order(
    pair: tuple[IdentityGraph, IdentityGraph], monkeypatch: pytest.MonkeyPatch, compact_at: int
) -> None:
    """Folded into a new base after every change, or never, it reads the same."""
    monkeypatch.setattr(embedded_store, "COMPACT_AT", compact_at)
    writer, follower = pair
    for batch in batches_of(4):
        writer.ingest(batch)
    writer.remove_identifier(IdentifierInput("email", "u3@example.com"))
    catch_up(follower)
    assert dump(follower) == dump(writer)


def test_past_the_log_or_a_bulk_load_a_follower_reads_the_file(
    pair: tuple[IdentityGraph, IdentityGraph], tmp_path: Path
) -> None:
    writer, follower = pair
    for batch in batches_of(5)[:5]:
        writer.ingest(batch)
    with sqlite3.connect(tmp_path / "data" / "idgraph.sqlite3") as db:
        db.execute("DELETE FROM change_log")  # as if trimmed: the follower is too far behind
    catch_up(follower)
    assert dump(follower) == dump(writer)

    bulk = writer.bulk_load(NOW)
    more = [
        EventInput("crm", [IdentifierInput("phone", f"1390013{n:04d}")], event_id=f"b{n}")
        for n in range(30)
    ]
    clean = [clean_event(p, e, writer.registry, NOW) for p, e in enumerate(more)]
    bulk.add(clean, [EventResult(c.position, c.event_id, "ACCEPTED") for c in clean])
    catch_up(follower)  # mid-load: the deferred events are read, not yet resolved
    assert dump(follower)["events"] == dump(writer)["events"]
    bulk.finish()
    catch_up(follower)
    assert dump(follower) == dump(writer)


def test_a_view_reads_its_own_commit_while_the_follower_moves_on(
    pair: tuple[IdentityGraph, IdentityGraph],
) -> None:
    """A view taken before a catch-up reads the commit it began with, in every statement."""
    writer, follower = pair
    store = follower.store
    assert isinstance(store, EmbeddedStore)
    one_ids = sorted({o for _, o in store.assignments() if o is not None})
    before = store.customer_sources(one_ids)
    with store.reading() as view:
        generation = view.version()
        writer.ingest(events(8, 60))
        catch_up(follower)
        assert view.customer_sources(one_ids) == before
        assert view.version() == generation  # no statement saw another commit
    assert store.version() > generation
    assert store.customer_sources(one_ids) != before


def test_a_follower_writes_nothing(pair: tuple[IdentityGraph, IdentityGraph]) -> None:
    _, follower = pair
    with pytest.raises(StoreUnavailable, match="only follows"):
        follower.ingest([EventInput("web", [IdentifierInput("email", "new@example.com")])])


def test_a_follower_needs_a_store_to_follow(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="no embedded store"):
        EmbeddedStore(tmp_path / "nothing", follow=True)
