"""Time alone moves tags: the next moment a customer's tags could change is never missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from graph.config import load_config
from graph.events import EventInput, IdentifierInput
from graph.identity_graph import IdentityGraph
from graph.store.protocol import GraphStore
from graph.tags.aggregates import EventFact
from graph.tags.definitions import (
    TagDefinition,
    evaluate_tags,
    evaluation_order,
    parse_definition,
    tag_values,
)
from graph.tags.facts import CustomerFacts
from graph.tags.timing import next_change

NOW = datetime(2026, 9, 1, tzinfo=UTC)

RULES: dict[str, dict[str, Any]] = {
    "recent-buyer": {
        "when": {
            "aggregate": "count",
            "event": "order_paid",
            "within": {"days": 7},
            "op": "gte",
            "value": 2,
        }
    },
    "last-month-spend": {
        "compute": {
            "aggregate": "sum",
            "event": "order_paid",
            "property": "amount",
            "within": {"from": {"daysAgo": 60}, "to": {"daysAgo": 30}},
        }
    },
    "birthday-soon": {"when": {"trait": "signup", "op": "gt", "value": {"daysAgo": 10}}},
    "fixed": {
        "when": {
            "aggregate": "count",
            "within": {"from": "2026-01-01T00:00:00Z", "to": "2026-06-30T00:00:00Z"},
            "op": "gt",
            "value": 0,
        }
    },
}


def definitions() -> list[TagDefinition]:
    found = {k: parse_definition(k, k, "BEHAVIOR", **rule) for k, rule in RULES.items()}
    found.update(load_config().tags.parsed())
    return evaluation_order(found)


ORDER = definitions()


def facts(now: datetime, days_ago: list[float], signup: float) -> CustomerFacts:
    events = [
        EventFact(NOW - timedelta(days=d), n, "order_paid", "web", {"amount": 10 * (n + 1)})
        for n, d in enumerate(days_ago)
    ]
    stamps = [e.timestamp for e in events]
    traits = {"signup": (NOW - timedelta(days=signup)).isoformat()}
    return CustomerFacts(now, traits, min(stamps), max(stamps), ["web"], events)


def values(now: datetime, days_ago: list[float], signup: float) -> dict[str, Any]:
    found = evaluate_tags(ORDER, facts(now, days_ago, signup))
    values = {k: v.value for k, v in found.items()}
    # Deciding without explanations (as writes do) finds the same.
    assert tag_values(ORDER, facts(now, days_ago, signup)) == values
    return values


@settings(max_examples=150, deadline=None)
@given(
    days_ago=st.lists(st.floats(min_value=-2, max_value=150), min_size=1, max_size=8),
    signup=st.floats(min_value=0, max_value=30),
    later=st.lists(st.floats(min_value=0.0001, max_value=120), min_size=1, max_size=5),
)
def test_no_change_comes_before_the_moment_found(
    days_ago: list[float], signup: float, later: list[float]
) -> None:
    due = next_change(ORDER, facts(NOW, days_ago, signup))
    before = values(NOW, days_ago, signup)
    for days in later:
        moment = NOW + timedelta(days=days)
        if values(moment, days_ago, signup) != before:
            assert due is not None and due <= moment, (due, moment)


def test_the_moment_is_when_the_oldest_order_leaves_the_window() -> None:
    order = [d for d in ORDER if d.id == "recent-buyer"]
    found = next_change(order, facts(NOW, [3, 5, 20], 400))
    assert found is not None
    assert NOW + timedelta(days=2) <= found <= NOW + timedelta(days=2, microseconds=1)


def test_a_rule_of_fixed_dates_or_no_dates_is_never_due() -> None:
    order = [d for d in ORDER if d.id == "fixed"]
    assert next_change(order, facts(NOW, [3, 200], 400)) is None
    assert next_change([], facts(NOW, [3], 400)) is None


def test_a_build_logs_what_time_moved_meanwhile_as_time(store: GraphStore) -> None:
    """A build decides every tag of a customer; only its own (and their readers) moved by it."""
    now = [NOW]
    graph = IdentityGraph(load_config(), store, clock=lambda: now[0])
    buy = {"aggregate": "count", "event": "order_paid", "op": "gt", "value": 0}
    graph.tags.define(
        parse_definition("recent-buyer", "r", "BEHAVIOR", when={**buy, "within": {"days": 7}})
    )
    graph.tags.build()
    graph.ingest(
        [
            EventInput(
                "tmall",
                [IdentifierInput("phone", "13800138000")],
                "o1",
                timestamp=NOW - timedelta(days=5),
                name="order_paid",
            )
        ]
    )
    # The window passes; before the customer is due again, new rules are built.
    now[0] = NOW + timedelta(days=3)
    graph.tags.define(parse_definition("buyer", "b", "BEHAVIOR", when=buy))
    reads_buyer = {"all": [{"tag": "buyer", "op": "has"}]}
    graph.tags.define(parse_definition("buyer-too", "t", "BEHAVIOR", when=reads_buyer))
    graph.tags.build()
    one_id = graph.resolve_one(IdentifierInput("phone", "13800138000")).one_id
    assert one_id is not None
    causes = {c.tag_id: c.cause["kind"] for c in graph.tags.history([one_id], None)}
    del causes["lifecycle"]  # the shipped tag, decided with the order
    assert causes == {"recent-buyer": "TIME", "buyer": "DEFINITION", "buyer-too": "DEFINITION"}
