"""The rule language: every operator, aggregate, window and kind of tag, decided and explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graph.errors import InvalidRule, TagCycle
from graph.tags.aggregates import EventFact
from graph.tags.compiled import compile_condition, compile_test
from graph.tags.conditions import Test as Check
from graph.tags.definitions import TagKind, evaluate_tags, evaluation_order, parse_definition
from graph.tags.evaluation import evaluate, passes
from graph.tags.evaluation import holds as decided
from graph.tags.facts import MISSING, CustomerFacts
from graph.tags.parsing import parse_condition

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def order(days: float, amount: Any, seq: int, source: str = "tmall", **more: Any) -> EventFact:
    return EventFact(ago(days), seq, "order_paid", source, {"amount": amount, **more})


EVENTS = [
    order(100, 50, 1, category="food"),
    order(40, 200.5, 2, category="skincare"),
    order(20, 300, 3, category="skincare", source="jd"),
    order(10, "n/a", 4, category="toys"),
    order(5, 100, 5),
    EventFact(ago(1), 6, "page_view", "web", {"path": "/"}),
    EventFact(ago(0.5), 7, None, "app", {}),
]


def facts(**overrides: Any) -> CustomerFacts:
    given: dict[str, Any] = {
        "now": NOW,
        "traits": {"city": "上海", "age": 34, "vip": True, "birthday": "1992-07-01", "gone": None},
        "first_seen": ago(100),
        "last_seen": ago(0.5),
        "sources": ["app", "jd", "tmall", "web"],
        "events": EVENTS,
        "account_links": [
            {"id": "crm-1", "industry": "manufacturing", "seniority": "DIRECTOR", "roles": []},
            {"id": "crm-2", "industry": "retail", "seniority": "STAFF", "roles": ["USER"]},
        ],
    }
    given.update(overrides)
    return CustomerFacts(**given)


def holds(rule: dict[str, Any], **overrides: Any) -> bool:
    condition = parse_condition(rule)
    held, _ = evaluate(condition, facts(**overrides))
    # Writes decide without building the explanation, compiled: the answer is the same.
    assert decided(condition, facts(**overrides)) == held
    assert compile_condition(condition)(facts(**overrides)) == held
    return held


TRAITS = [
    ({"trait": "city", "op": "eq", "value": "上海"}, True),
    ({"trait": "city", "op": "ne", "value": "北京"}, True),
    ({"trait": "age", "op": "gt", "value": 30}, True),
    ({"trait": "age", "op": "gte", "value": 34}, True),
    ({"trait": "age", "op": "lt", "value": 34}, False),
    ({"trait": "age", "op": "lte", "value": 34.0}, True),
    ({"trait": "age", "op": "between", "value": [18, 34]}, True),
    ({"trait": "age", "op": "between", "value": [35, 50]}, False),
    ({"trait": "age", "op": "eq", "value": "34"}, False),  # a text is not a number
    ({"trait": "age", "op": "ne", "value": "34"}, True),
    ({"trait": "age", "op": "gt", "value": "3"}, False),
    ({"trait": "city", "op": "in", "value": ["北京", "上海"]}, True),
    ({"trait": "city", "op": "notIn", "value": ["北京", "广州"]}, True),
    ({"trait": "city", "op": "contains", "value": "海"}, True),
    ({"trait": "city", "op": "startsWith", "value": "上"}, True),
    ({"trait": "city", "op": "startsWith", "value": "海"}, False),
    ({"trait": "vip", "op": "eq", "value": True}, True),
    ({"trait": "vip", "op": "eq", "value": 1}, False),  # true is not 1
    ({"trait": "city", "op": "exists"}, True),
    ({"trait": "city", "op": "missing"}, False),
    ({"trait": "birthday", "op": "lt", "value": {"daysAgo": 365}}, True),
    ({"trait": "birthday", "op": "gt", "value": "1990-01-01"}, True),  # ISO text orders as time
]
UNKNOWN = [
    {"trait": "nope", "op": "eq", "value": "x"},
    {"trait": "nope", "op": "ne", "value": "x"},  # unknown is not "not equal"
    {"trait": "nope", "op": "notIn", "value": ["x"]},
    {"trait": "nope", "op": "lt", "value": 1},
    {"trait": "nope", "op": "exists"},
    {"trait": "gone", "op": "ne", "value": "x"},  # an explicit null is unknown too
    {"aggregate": "avg", "event": "refund", "property": "amount", "op": "ne", "value": 0},
]


@pytest.mark.parametrize(("rule", "expected"), TRAITS)
def test_every_operator_on_traits(rule: dict[str, Any], expected: bool) -> None:
    assert holds(rule) is expected


@pytest.mark.parametrize("rule", UNKNOWN)
def test_an_unknown_value_fails_every_test_but_missing(rule: dict[str, Any]) -> None:
    assert holds(rule) is False
    if "trait" in rule:
        assert holds({"trait": rule["trait"], "op": "missing"}) is True


PROFILE = [
    ({"profile": "firstSeen", "op": "lt", "value": {"daysAgo": 90}}, True),
    ({"profile": "firstSeen", "op": "gte", "value": {"daysAgo": 30}}, False),
    ({"profile": "lastSeen", "op": "between", "value": [{"daysAgo": 1}, {"daysAgo": 0}]}, True),
    ({"profile": "lastSeen", "op": "gt", "value": "2026-06-29T00:00:00Z"}, True),
    ({"profile": "eventCount", "op": "eq", "value": 7}, True),
    ({"profile": "sources", "op": "contains", "value": "jd"}, True),
    ({"profile": "sources", "op": "in", "value": ["wechat", "web"]}, True),
    ({"profile": "sources", "op": "notIn", "value": ["wechat"]}, True),
]


@pytest.mark.parametrize(("rule", "expected"), PROFILE)
def test_profile_fields(rule: dict[str, Any], expected: bool) -> None:
    assert holds(rule) is expected


def aggregate(**rule: Any) -> Any:
    condition = parse_condition({**rule, "op": "exists"})
    _, explanation = evaluate(condition, facts())
    return explanation["seen"]


def test_every_aggregate() -> None:
    paid = {"event": "order_paid"}
    assert aggregate(aggregate="count", **paid) == 5
    assert aggregate(aggregate="count") == 7  # every event, named or not
    assert aggregate(aggregate="count", event=["order_paid", "page_view"]) == 6
    assert aggregate(aggregate="sum", property="amount", **paid) == 650.5  # "n/a" is no number
    assert aggregate(aggregate="avg", property="amount", **paid) == 650.5 / 4
    assert aggregate(aggregate="min", property="amount", **paid) == 50
    assert aggregate(aggregate="max", property="amount", **paid) == 300
    assert aggregate(aggregate="first", property="category", **paid) == "food"
    assert aggregate(aggregate="last", property="amount", **paid) == 100
    assert aggregate(aggregate="distinctCount", property="category", **paid) == 3
    assert aggregate(aggregate="mostFrequent", property="category", **paid) == "skincare"
    assert aggregate(aggregate="count", property="category", **paid) == 4  # events that have it
    assert aggregate(aggregate="sum", property="amount", source="jd", **paid) == 300
    assert aggregate(aggregate="sum", property="amount", event="refund") == 0
    assert aggregate(aggregate="max", property="amount", event="refund") is None


def test_windows_by_days_and_by_moments() -> None:
    paid = {"aggregate": "sum", "event": "order_paid", "property": "amount"}
    assert aggregate(**paid, within={"days": 30}) == 400
    assert aggregate(**paid, within={"days": 40}) == 600.5  # the edge is inclusive
    assert aggregate(**paid, within={"from": {"daysAgo": 60}, "to": {"daysAgo": 15}}) == 500.5
    assert aggregate(**paid, within={"to": {"daysAgo": 60}}) == 50
    since = (NOW - timedelta(days=25)).isoformat()
    assert aggregate(**paid, within={"from": since}) == 400
    held = parse_condition({**paid, "within": {"days": 30}, "op": "gt", "value": 399})
    assert evaluate(held, facts())[0]
    # The same rule a month later: the window has moved with no event at all.
    assert not evaluate(held, facts(now=NOW + timedelta(days=30)))[0]


def test_all_any_not_and_the_explanation() -> None:
    rule = {
        "all": [
            {"trait": "city", "op": "eq", "value": "上海"},
            {
                "any": [
                    {"trait": "age", "op": "lt", "value": 30},
                    {"not": {"trait": "vip", "op": "missing"}},
                ]
            },
            {
                "aggregate": "count",
                "event": "order_paid",
                "within": {"days": 30},
                "op": "gte",
                "value": 2,
            },
        ]
    }
    held, explanation = evaluate(parse_condition(rule), facts())
    assert held
    city, either, orders = explanation["all"]
    assert city == {"trait": "city", "op": "eq", "value": "上海", "seen": "上海", "held": True}
    assert either["held"] and [e["held"] for e in either["any"]] == [False, True]
    assert orders["seen"] == 3 and orders["window"]["from"] == ago(30).isoformat()


def test_account_links_any_all_none() -> None:
    director = {"field": "seniority", "op": "gte", "value": "DIRECTOR"}
    manufacturing = {"field": "industry", "op": "eq", "value": "manufacturing"}
    both = {"all": [director, manufacturing]}
    assert holds({"account": both})
    assert not holds({"account": both, "quantifier": "all"})
    assert not holds({"account": both, "quantifier": "none"})
    assert holds({"account": {"field": "roles", "op": "contains", "value": "USER"}})
    assert holds({"account": {"field": "roles", "op": "missing"}})  # crm-1 has none
    assert not holds({"account": director, "quantifier": "all"})
    assert holds({"account": {"field": "seniority", "op": "in", "value": ["STAFF"]}})
    assert not holds({"account": director}, account_links=[])
    assert not holds({"account": director, "quantifier": "all"}, account_links=[])
    assert holds({"account": director, "quantifier": "none"}, account_links=[])
    _, explanation = evaluate(parse_condition({"account": both}), facts())
    assert [link["held"] for link in explanation["links"]] == [True, False]


def define(tag_id: str, **rule: Any) -> Any:
    return parse_definition(tag_id, tag_id.title(), "VALUE", **rule)


def test_labelled_value_and_tag_on_tag() -> None:
    definitions = {
        "spend": define(
            "spend", compute={"aggregate": "sum", "event": "order_paid", "property": "amount"}
        ),
        "level": define(
            "level",
            cases=[
                {"value": "high", "when": {"tag": "spend", "op": "gte", "value": 1000}},
                {"value": "mid", "when": {"tag": "spend", "op": "gte", "value": 500}},
            ],
            otherwise="low",
        ),
        "fan": define(
            "fan",
            when={
                "all": [
                    {"tag": "level", "op": "in", "value": ["mid", "high"]},
                    {"tag": "vip-list", "op": "has"},
                ]
            },
        ),
        "vip-list": define("vip-list"),
        "never": define(
            "never", compute={"aggregate": "max", "event": "refund", "property": "amount"}
        ),
    }
    assert [d.kind for d in definitions.values()] == [
        TagKind.VALUE,
        TagKind.LABELLED,
        TagKind.RULE,
        TagKind.MANUAL,
        TagKind.VALUE,
    ]
    ordered = evaluation_order(definitions)
    assert [d.id for d in ordered].index("spend") < [d.id for d in ordered].index("level")
    tags = evaluate_tags(ordered, facts(), manual={})
    assert {k: v.value for k, v in tags.items()} == {"spend": 650.5, "level": "mid"}
    tags = evaluate_tags(
        ordered, facts(), manual={"vip-list": {"by": "ops", "at": NOW.isoformat()}}
    )
    assert {k: v.value for k, v in tags.items()} == {
        "spend": 650.5,
        "level": "mid",
        "fan": True,
        "vip-list": True,
    }
    assert tags["level"].explanation["cases"][0]["held"] is False


def test_a_cycle_between_tags_is_refused() -> None:
    definitions = {
        "a": define("a", when={"tag": "b", "op": "has"}),
        "b": define("b", when={"any": [{"tag": "c", "op": "has"}]}),
        "c": define("c", cases=[{"value": "x", "when": {"tag": "a", "op": "has"}}]),
    }
    with pytest.raises(TagCycle, match="a -> b -> c -> a"):
        evaluation_order(definitions)
    with pytest.raises(InvalidRule, match="not defined"):
        evaluation_order({"a": definitions["a"]})


INVALID = [
    ({"when": {"trait": "city", "op": "like", "value": "x"}}, "$.when.op"),
    (
        {"when": {"aggregate": "median", "event": "x", "property": "a", "op": "gt", "value": 1}},
        "$.when.aggregate",
    ),
    ({"when": {"all": []}}, "$.when.all"),
    (
        {
            "when": {
                "any": [{"trait": "a", "op": "exists"}, {"trait": "b", "op": "exists", "value": 1}]
            }
        },
        "$.when.any[1].value",
    ),
    ({"when": {"profile": "eventCount", "op": "gt", "value": "ten"}}, "$.when.value"),
    ({"when": {"profile": "firstSeen", "op": "gt", "value": "yesterday"}}, "$.when.value"),
    (
        {
            "when": {
                "aggregate": "count",
                "event": "x",
                "within": {"days": 0},
                "op": "gt",
                "value": 1,
            }
        },
        "$.when.within.days",
    ),
    (
        {
            "when": {
                "aggregate": "count",
                "event": "x",
                "within": {"dayz": 3},
                "op": "gt",
                "value": 1,
            }
        },
        "$.when.within.dayz",
    ),
    (
        {
            "when": {
                "aggregate": "count",
                "within": {"from": {"daysAgo": 1}, "to": {"daysAgo": 9}},
                "op": "gt",
                "value": 1,
            }
        },
        "$.when.within",
    ),
    ({"when": {"aggregate": "sum", "event": "x", "op": "gt", "value": 1}}, "$.when.property"),
    ({"when": {"trait": "age", "op": "between", "value": [9, 1]}}, "$.when.value"),
    ({"when": {"trait": "age", "op": "between", "value": [1, "9"]}}, "$.when.value"),
    ({"when": {"trait": "age", "op": "in", "value": []}}, "$.when.value"),
    ({"when": {"trait": "age", "op": "gt", "value": 1, "whithin": 3}}, "$.when.whithin"),
    ({"when": {"account": {"trait": "city", "op": "exists"}}}, "$.when.account"),
    (
        {"when": {"account": {"field": "seniority", "op": "gte", "value": "BOSS"}}},
        "$.when.account.value",
    ),
    ({"when": {"account": {"field": "roles", "op": "gt", "value": "X"}}}, "$.when.account.op"),
    ({"when": {"field": "industry", "op": "exists"}}, "$.when"),
    ({"when": {"profile": "sources", "op": "eq", "value": "web"}}, "$.when.op"),
    ({"cases": [{"value": "x", "when": {"trait": "a", "op": "nope"}}]}, "$.cases[0].when.op"),
    ({"cases": [{"value": "", "when": {"trait": "a", "op": "exists"}}]}, "$.cases[0].value"),
    ({"otherwise": "x"}, "$.otherwise"),
    ({"compute": {"aggregate": "sum", "event": "x", "property": "a", "op": "gt"}}, "$.compute.op"),
    ({"when": {"trait": "a", "op": "exists"}, "compute": {"aggregate": "count"}}, "$.compute"),
]


@pytest.mark.parametrize(("rule", "path"), INVALID)
def test_an_invalid_definition_is_refused_with_the_path_of_its_bad_part(
    rule: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidRule) as refused:
        define("bad", **rule)
    assert refused.value.path == path
    assert refused.value.code == "INVALID_RULE"


def test_ids_and_categories() -> None:
    with pytest.raises(InvalidRule, match=r"\$\.id"):
        parse_definition("Not A Slug", "x", "BASIC")
    with pytest.raises(InvalidRule, match=r"\$\.category"):
        parse_definition("ok", "x", "two words")
    assert parse_definition("ok", "x", "LOYALTY").category == "LOYALTY"


SEEN = st.one_of(
    st.integers(-3, 3),
    st.floats(allow_infinity=True, allow_nan=True, width=16),
    st.booleans(),
    st.sampled_from(["", "上海", "3", "1990-01-01", MISSING, None, [], ["上海"], [3]]),
)
OPERANDS = st.one_of(
    st.integers(-3, 3), st.floats(-3, 3, width=16), st.booleans(), st.sampled_from(["上海", "3"])
)


@given(
    op=st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "in", "notIn", "exists", "missing"]),
    operand=OPERANDS,
    listed=st.lists(OPERANDS, max_size=3),
    seen=SEEN,
)
def test_a_compiled_test_passes_exactly_when_passes_says(
    op: str, operand: Any, listed: list[Any], seen: Any
) -> None:
    value = tuple(listed) if op in ("in", "notIn") else operand
    test = Check(op, value)
    assert compile_test(test)(seen, NOW) == passes(test, seen, NOW)
