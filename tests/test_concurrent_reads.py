"""Reads beside a writer see the graph before a commit or after it, never half of one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.embedded.shape import Shape
from tests.conftest import make_settings

BATCHES = 25


def batch(n: int) -> list[EventInput]:
    """One write: a cookie and a device, each seen with the CRM id, in two events."""
    return [
        EventInput(
            "web",
            [IdentifierInput("crm_id", "C1"), IdentifierInput("cookie_id", f"ck-{n:06d}")],
            event_id=f"w{n}",
        ),
        EventInput(
            "app",
            [IdentifierInput("crm_id", "C1"), IdentifierInput("device_id", f"dev-{n:06d}")],
            event_id=f"a{n}",
        ),
    ]


def test_reads_never_see_half_a_write(tmp_path: Path, store_uri: str | None) -> None:
    settings = make_settings(tmp_path / "data", neo4j_uri=store_uri)
    graph = IdentityGraph(settings.load_config(), settings.open_store())
    try:
        graph.ingest([EventInput("crm", [IdentifierInput("crm_id", "C1")], event_id="start")])
        (found,) = graph.resolve([IdentifierInput("crm_id", "C1")])
        one_id = found.one_id
        assert one_id is not None
        done = threading.Event()
        seen: list[int] = []
        problems: list[str] = []

        def read() -> None:
            while not done.is_set():
                profile = graph.profile(one_id)
                assert profile is not None
                cookies = sum(1 for i in profile.identifiers if i.type == "cookie_id")
                devices = sum(1 for i in profile.identifiers if i.type == "device_id")
                if cookies != devices or profile.event_count != 1 + 2 * cookies:
                    problems.append(
                        f"{cookies} cookies, {devices} devices, {profile.event_count} events"
                    )
                seen.append(cookies)
                n = cookies  # the write that may be under way: both or neither
                pair = graph.resolve(
                    [
                        IdentifierInput("cookie_id", f"ck-{n:06d}"),
                        IdentifierInput("device_id", f"dev-{n:06d}"),
                    ]
                )
                if {r.status for r in pair} not in ({"LINKED"}, {"UNKNOWN"}):
                    problems.append(f"write {n} half seen: {[r.status for r in pair]}")

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        for n in range(BATCHES):
            graph.ingest(batch(n))
        done.set()
        for reader in readers:
            reader.join()
        assert not problems, problems[:5]
        assert len(set(seen)) > 2, "the readers ran beside the writer"
    finally:
        graph.close()


def test_reads_between_commit_and_publication_answer_at_once_and_never_go_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded store stages a write's shape before committing: no reader waits to publish.

    The writer is held after its commit, before it publishes. A read that
    needs only the shape answers at once from the shape published before;
    one that reads the file finds the commit there and answers from the
    commit's staged shape; from then on no read answers from before it.
    """
    store = EmbeddedStore(tmp_path / "data")
    graph = IdentityGraph(make_settings(tmp_path / "data").load_config(), store)
    committed, release = threading.Event(), threading.Event()
    publish = EmbeddedStore._publish

    def held(self: EmbeddedStore, shape: Shape) -> None:
        committed.set()
        release.wait(10)
        publish(self, shape)

    pair = [IdentifierInput("cookie_id", "ck-000000"), IdentifierInput("device_id", "dev-000000")]
    try:
        graph.ingest([EventInput("crm", [IdentifierInput("crm_id", "C1")], event_id="e0")])
        (c1,) = graph.resolve([IdentifierInput("crm_id", "C1")])
        assert c1.one_id is not None
        monkeypatch.setattr(EmbeddedStore, "_publish", held)
        writer = threading.Thread(target=graph.ingest, args=(batch(0),))
        writer.start()
        assert committed.wait(10)
        started = time.perf_counter()
        before = graph.resolve(pair)
        profile = graph.profile(c1.one_id)
        after = graph.resolve(pair)
        waited = time.perf_counter() - started
        release.set()
        writer.join()
        assert [r.status for r in before] == ["UNKNOWN", "UNKNOWN"]
        assert profile is not None and profile.event_count == 3
        assert {i.type for i in profile.identifiers} == {"crm_id", "cookie_id", "device_id"}
        assert [r.status for r in after] == ["LINKED", "LINKED"]
        assert {r.one_id for r in after} == {c1.one_id}
        assert waited < 5, "a read waited for the writer to publish"
    finally:
        release.set()
        graph.close()
