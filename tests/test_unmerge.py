"""OneIDs given back when a merge is undone: by a removal, a shared identifier or a limit.

A client that stored a OneID before a merge reads the same person after the
merge is undone, never somebody else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from tests.conftest import STORES, Api, empty_neo4j, event
from tests.test_resolution import REMOVE, profile


def restored_from(api: Api, one_id: str, former: str) -> None:
    """``one_id`` is its own again, no alias of ``former``, and both histories say so."""
    own = profile(api, one_id)
    assert own["oneId"] == one_id
    assert one_id not in profile(api, former)["aliases"]
    restores = [h for h in own["history"] if h["kind"] == "RESTORE"]
    assert restores and restores[-1]["oneId"] == one_id and restores[-1]["others"] == [former]
    splits = [h for h in profile(api, former)["history"] if h["kind"] == "SPLIT"]
    assert splits and one_id in splits[-1]["others"]


def test_removing_the_bridge_gives_the_absorbed_one_id_back(api: Api) -> None:
    x = api.ingest(event("e1", "web", ("cookie_id", "ck-aaaaaa"), ("email", "a@x.com")))
    y = api.ingest(event("e2", "app", ("device_id", "dev-bbbbbb"), ("phone", "13800138000")))
    old, young = x["results"][0]["oneId"], y["results"][0]["oneId"]
    api.ingest(
        event("e3", "crm", ("email", "a@x.com"), ("crm_id", "C1")),
        event("e4", "crm", ("crm_id", "C1"), ("phone", "13800138000")),
    )
    assert api.one_id("device_id", "dev-bbbbbb") == old
    assert young in profile(api, old)["aliases"]
    api(REMOVE, {"id": {"type": "crm_id", "value": "C1"}})
    assert api.one_id("cookie_id", "ck-aaaaaa") == old
    assert api.one_id("device_id", "dev-bbbbbb") == young
    assert api.one_id("phone", "13800138000") == young
    restored_from(api, young, old)
    assert profile(api, old)["aliases"] == []


def test_a_shared_identifier_gives_the_absorbed_one_id_back(api: Api) -> None:
    x = api.ingest(event("a", "app", ("phone", "13800138001"), ("cookie_id", "ck-111111")))
    y = api.ingest(event("b", "app", ("email", "b@example.org"), ("cookie_id", "ck-222222")))
    old, young = x["results"][0]["oneId"], y["results"][0]["oneId"]
    api.ingest(event("c", "app", ("device_id", "kiosk-0001"), ("phone", "13800138001")))
    api.ingest(event("d", "app", ("device_id", "kiosk-0001"), ("email", "b@example.org")))
    assert api.one_id("email", "b@example.org") == old
    # A third person on the kiosk: it is shared, and the two come apart again.
    api.ingest(event("e", "app", ("device_id", "kiosk-0001"), ("phone", "13800138003")))
    assert api.status("device_id", "kiosk-0001") == "SHARED"
    assert api.one_id("phone", "13800138001") == old
    assert api.one_id("email", "b@example.org") == young
    assert api.one_id("cookie_id", "ck-222222") == young
    assert api.one_id("phone", "13800138003") not in {None, old, young}
    restored_from(api, young, old)


def test_a_limit_gives_the_absorbed_one_id_back(api: Api) -> None:
    x = api.ingest(event("a", "crm", ("crm_id", "C1"), ("phone", "13800138001")))
    y = api.ingest(event("b", "web", ("phone", "13800138002"), ("cookie_id", "ck-222222")))
    old, young = x["results"][0]["oneId"], y["results"][0]["oneId"]
    api.ingest(event("c", "app", ("phone", "13800138001"), ("phone", "13800138002")))
    assert api.one_id("cookie_id", "ck-222222") == old
    # A second CRM id for the second phone: one customer may hold one, so they part.
    api.ingest(event("d", "crm", ("phone", "13800138002"), ("crm_id", "C2")))
    assert api.one_id("crm_id", "C1") == old
    assert api.one_id("phone", "13800138002") == young
    assert api.one_id("crm_id", "C2") == young
    restored_from(api, young, old)


def test_of_several_absorbed_the_oldest_comes_back_and_keeps_the_others(api: Api) -> None:
    ids = []
    for n in range(3):
        found = api.ingest(
            event(f"p{n}", "web", (("phone", f"1380013800{n}")), ("cookie_id", f"ck-00000{n}"))
        )
        ids.append(found["results"][0]["oneId"])
    first, second, third = ids
    # One bridge joins the first to both others; a second joins the two others.
    api.ingest(
        event("b1", "crm", ("member_id", "M-1"), ("phone", "13800138000")),
        event("b2", "crm", ("member_id", "M-1"), ("phone", "13800138001")),
        event("b3", "crm", ("member_id", "M-1"), ("phone", "13800138002")),
        event("b4", "crm", ("phone", "13900139000"), ("phone", "13800138001")),
        event("b5", "crm", ("phone", "13900139000"), ("phone", "13800138002")),
    )
    assert {api.one_id("phone", f"1380013800{n}") for n in range(3)} == {first}
    api(REMOVE, {"id": {"type": "member_id", "value": "M-1"}})
    assert api.one_id("phone", "13800138000") == first
    assert api.one_id("phone", "13800138001") == second
    assert api.one_id("phone", "13800138002") == second
    assert profile(api, third)["oneId"] == second  # still an alias, now of the part it is in
    assert third in profile(api, second)["aliases"]
    assert third not in profile(api, first)["aliases"]
    api(REMOVE, {"id": {"type": "phone", "value": "13900139000"}})
    assert [api.one_id("phone", f"1380013800{n}") for n in range(3)] == ids
    assert profile(api, third)["oneId"] == third


# --- the property: merge, then undo the merges in any order -------------------------

CUSTOMERS = 4
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def opened(kind: str, tmp_path: Path, neo4j_uri: Callable[[], str]) -> Iterator[IdentityGraph]:
    if kind == "embedded":
        store: Any = EmbeddedStore(tmp_path)
    else:
        uri = neo4j_uri()
        empty_neo4j(uri)
        store = Neo4jStore(uri)
    graph = IdentityGraph(load_config(), store)
    try:
        yield graph
    finally:
        graph.close()


bridges = st.lists(
    st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, CUSTOMERS - 1)).filter(
        lambda p: p[0] != p[1]
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.parametrize("kind", STORES)
def test_undoing_merges_in_any_order_gives_every_customer_its_one_id(
    kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Customers are merged through bridge identifiers in any order and shape (chains,
    stars, cycles), then the bridges are removed in any order: each customer ends with
    the OneID it had before any merge."""

    def neo4j_uri() -> str:
        uri: str = request.getfixturevalue("neo4j_uri")
        return uri

    @settings(
        max_examples=60 if kind == "embedded" else 15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(links=bridges, data=st.data())
    def check(links: list[tuple[int, int]], data: st.DataObject) -> None:
        order = data.draw(st.permutations(range(CUSTOMERS)))
        with opened(kind, tmp_path_factory.mktemp("store"), neo4j_uri) as graph:
            clock = iter(T0 + timedelta(minutes=n) for n in range(1000))
            for n in order:  # each customer: a phone and a cookie
                graph.ingest(
                    [
                        EventInput(
                            "web",
                            [
                                IdentifierInput("phone", f"1380013800{n}"),
                                IdentifierInput("cookie_id", f"cookie-{n:04d}"),
                            ],
                            event_id=f"own-{n}",
                            timestamp=next(clock),
                        )
                    ]
                )
            before = {n: phone_one_id(graph, n) for n in range(CUSTOMERS)}
            assert len(set(before.values())) == CUSTOMERS
            for b, (i, j) in enumerate(links):  # a bridge phone seen with both
                for side in (i, j):
                    graph.ingest(
                        [
                            EventInput(
                                "crm",
                                [
                                    IdentifierInput("phone", f"1390013900{b}"),
                                    IdentifierInput("phone", f"1380013800{side}"),
                                ],
                                event_id=f"bridge-{b}-{side}",
                                timestamp=next(clock),
                            )
                        ]
                    )
            for b in data.draw(st.permutations(range(len(links)))):
                graph.remove_identifier(IdentifierInput("phone", f"1390013900{b}"))
            after = {n: phone_one_id(graph, n) for n in range(CUSTOMERS)}
            assert after == before
            for n, one_id in before.items():  # and each OneID reads its own customer
                found = graph.profile(one_id)
                assert found is not None and found.one_id == one_id
                assert {i.value for i in found.identifiers} == {
                    f"+861380013800{n}",
                    f"cookie-{n:04d}",
                }

    check()


def phone_one_id(graph: IdentityGraph, n: int) -> str:
    (found,) = graph.resolve([IdentifierInput("phone", f"1380013800{n}")])
    assert found.one_id is not None
    return found.one_id
