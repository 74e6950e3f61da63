"""Whatever happens - events, merges, splits, removals, definitions, time - tags equal a recompute.

Each example runs random steps on a real store (both engines) through
``IdentityGraph``; after every step, every customer's stored tags must be
what evaluating the definitions from scratch on its events gives, with time
moved tags decided once they are due.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.config import load_config
from graph.errors import NotFound
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.profiles import build_profile
from graph.store.embedded import EmbeddedStore
from graph.store.neo4j import Neo4jStore
from graph.store.protocol import GraphStore
from graph.tags.definitions import evaluate_tags, evaluation_order, parse_definition
from graph.tags.facts import CustomerFacts, event_facts
from graph.tags.tagger import same_value
from tests.conftest import empty_neo4j

START = datetime(2026, 3, 1, tzinfo=UTC)
PEOPLE = 4

VARIANTS: list[dict[str, Any]] = [
    {"compute": {"aggregate": "sum", "event": "order_paid", "property": "amount"}},
    {
        "when": {
            "aggregate": "count",
            "event": "order_paid",
            "within": {"days": 3},
            "op": "gte",
            "value": 2,
        }
    },
    {
        "cases": [
            {"value": "big", "when": {"tag": "vip", "op": "has"}},
            {
                "value": "mid",
                "when": {
                    "aggregate": "avg",
                    "property": "amount",
                    "within": {"from": {"daysAgo": 5}, "to": {"daysAgo": 1}},
                    "op": "gt",
                    "value": 20,
                },
            },
        ],
        "otherwise": "small",
    },
    {"when": {"trait": "city", "op": "eq", "value": "上海"}},
]


def identifiers(person: int, which: int) -> list[IdentifierInput]:
    """A person's phone (0), member id and cookie (1), or phone and member id (2).

    A join of one person's phone and another's member id merges them when
    neither holds an identifier of a type the other has one of; removing the
    member id then splits them again, each keeping its events.
    """
    phone = IdentifierInput("phone", f"1380013800{person}")
    member = IdentifierInput("member_id", f"M{person}")
    cookie = IdentifierInput("cookie_id", f"ck-{person}")
    return [[phone], [member, cookie], [phone, member]][which]


step = st.one_of(
    st.tuples(
        st.just("event"),
        st.integers(0, PEOPLE - 1),
        st.sampled_from([None, None, 2]),  # None: the person's usual identifiers
        st.sampled_from(["order_paid", "page_view", None]),
        st.sampled_from([5.0, 30.0, 120.5]),
        st.sampled_from(["上海", "北京", None]),
        # hours before now: inside the windows, before them, or a clock a little ahead
        st.sampled_from([0, 3, 30, 24 * 6, -5]),
    ),
    # Even people are known by phone, odd ones by member id and cookie: a join of an
    # even one's phone and an odd one's member id merges them, removing it splits.
    st.tuples(st.just("join"), st.sampled_from([0, 2]), st.sampled_from([1, 3])),
    st.tuples(st.just("join"), st.sampled_from([0, 2]), st.sampled_from([1, 3])),
    st.tuples(st.just("remove"), st.sampled_from([1, 3]), st.just(1)),
    st.tuples(st.just("remove"), st.integers(0, PEOPLE - 1), st.integers(0, 1)),
    st.tuples(st.just("define"), st.sampled_from(VARIANTS)),
    st.tuples(st.just("time"), st.sampled_from([1, 20, 24 * 2, 24 * 4])),
    st.tuples(st.just("vip"), st.integers(0, PEOPLE - 1), st.booleans()),
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def run(store: GraphStore, steps: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    graph = IdentityGraph(load_config(), store, clock=clock)
    graph.tags.define(parse_definition("vip", "VIP", "VALUE"))
    graph.tags.define(parse_definition("spend", "Spend", "VALUE", **VARIANTS[0]))
    graph.tags.define(parse_definition("recent", "Recent", "BEHAVIOR", **VARIANTS[1]))
    # A tag on a tag that events move: deciding only what events change must reach it.
    spender = {"when": {"tag": "spend", "op": "gt", "value": 100}}
    graph.tags.define(parse_definition("spender", "Spender", "VALUE", **spender))
    # Windows an event can fall outside of: fixed ends, and an end that moves on with time.
    fixed = {"from": (START - timedelta(days=1)).isoformat(), "to": START.isoformat()}
    for tag_id, within in (
        ("fixed", fixed),
        ("lagged", {"from": {"daysAgo": 5}, "to": {"daysAgo": 1}}),
    ):
        counted = {"aggregate": "count", "event": "order_paid", "within": within}
        graph.tags.define(parse_definition(tag_id, tag_id, "VALUE", compute=counted))
    graph.tags.build()
    for n, s in enumerate(steps, start=1):
        kind = s[0]
        if kind == "event":
            _, person, which, name, amount, city, age = s
            graph.ingest(
                [
                    EventInput(
                        "web",
                        identifiers(person, person % 2 if which is None else which),
                        f"e{n}",
                        clock.now - timedelta(hours=age),
                        {"city": city} if city else None,
                        name=name,
                        properties={"amount": amount} if name else None,
                    )
                ]
            )
        elif kind == "join":
            _, a, b = s
            graph.ingest(
                [EventInput("crm", [*identifiers(a, 0), *identifiers(b, 1)], f"e{n}", clock.now)]
            )
        elif kind == "remove":
            with contextlib.suppress(NotFound):  # removed before, or never seen
                graph.remove_identifier(identifiers(s[1], s[2])[0])
        elif kind == "define":
            graph.tags.define(parse_definition("spend", "Spend", "VALUE", **s[1]))
            graph.tags.build()
        elif kind == "time":
            clock.now += timedelta(hours=s[1])
            graph.tags.run_due()
        else:
            _, person, present = s
            one_id = graph.resolve_one(identifiers(person, 0)[0]).one_id
            if one_id is not None:
                graph.tags.set_manual(one_id, "vip", present, "test")
        check(graph, store, clock.now)


def check(graph: IdentityGraph, store: GraphStore, now: datetime) -> None:
    order = evaluation_order({s.definition.id: s.definition for s in graph.tags.definitions()})
    living = sorted({o for _, o in store.assignments() if o is not None})
    stored = store.tag_store.customer_tags(living)
    sources = store.customer_sources(living)
    for one_id in living:
        src = sources[one_id]
        profile = build_profile(one_id, src.nodes, src.events, graph.config.traits, [], [])
        facts = CustomerFacts(
            now,
            {t.name: t.value for t in profile.traits},
            profile.first_seen,
            profile.last_seen,
            profile.sources,
            event_facts(src.events),
        )
        names = [one_id, *store.aliases(one_id)]
        manual = {m.tag_id: {} for m in store.tag_store.manual_tags(names)}
        expected = {k: v.value for k, v in evaluate_tags(order, facts, manual).items()}
        found = {k: v.value for k, v in stored.get(one_id, {}).items()}
        assert found.keys() == expected.keys(), (one_id, found, expected)
        for k, v in expected.items():
            assert same_value(found[k], v), (one_id, k, found[k], v)
    gone = set(store.tag_store.customer_tags(_every_tagged(store))) - set(living)
    assert not gone, f"customers no longer living still have tags: {gone}"


def _every_tagged(store: GraphStore) -> set[str]:
    tags = ("vip", "spend", "recent", "spender", "fixed", "lagged", "lifecycle")
    return {o for tag in tags for o in store.tag_store.tagged(tag)}


@pytest.fixture(params=["embedded", "neo4j"])
def open_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    def opened() -> GraphStore:
        if request.param == "embedded":
            return EmbeddedStore(tmp_path_factory.mktemp("tags"))
        uri = request.getfixturevalue("neo4j_uri")
        empty_neo4j(uri)
        return Neo4jStore(uri)

    yield opened


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_tags_always_equal_a_recompute(open_store: Any, steps: list[tuple[Any, ...]]) -> None:
    store = open_store()
    try:
        run(store, steps)
    finally:
        store.close()


def test_a_path_exists(tmp_path: Path) -> None:
    """One fixed sequence through what random ones reach only now and then, embedded store.

    A tag on a tag crossing on a later event, a window ending after the
    second of two events, merges, splits, definitions and manual tags.
    """
    store = EmbeddedStore(tmp_path / "fixed")
    try:
        run(
            store,
            [
                ("event", 2, None, "order_paid", 30.0, None, 3),
                ("event", 2, None, "order_paid", 120.5, None, 0),  # spender follows spend
                ("time", 24 * 4),  # recent ends, with no event
                ("event", 0, 0, "order_paid", 30.0, "上海", -5),  # lagged has it in 29 hours
                ("time", 30),
                ("event", 1, 1, "order_paid", 120.5, None, 24 * 6),  # before lagged's window
                ("join", 0, 1),
                ("define", VARIANTS[1]),
                ("vip", 0, True),
                ("define", VARIANTS[2]),
                ("remove", 1, 1),
                ("time", 24 * 4),
                ("vip", 0, False),
                ("event", 3, None, "order_paid", 5.0, None, 24 * 6),  # before every window
                ("event", 3, None, "order_paid", 5.0, None, -5),  # in lagged's in 29 hours
                ("time", 30),
            ],
        )
    finally:
        store.close()
