"""Twenty rule tags for the benchmarks, as marketing would write them for the generated data.

Half of them are windowed aggregates. The generated year is 2025, so the
windows are fixed ranges in it or long relative ones (a bench run's "now" is
the time it runs); ``{"days": N}`` windows are there too, as they are what
time alone moves.
"""

from __future__ import annotations

from typing import Any

Q4 = {"from": "2025-10-01T00:00:00Z", "to": "2025-12-31T23:59:59Z"}
SINGLES_DAY = {"from": "2025-11-01T00:00:00Z", "to": "2025-11-12T00:00:00Z"}
H1 = {"from": "2025-01-01T00:00:00Z", "to": "2025-06-30T23:59:59Z"}
PAID = {"event": "order_paid"}


def _sum(within: dict[str, Any] | None = None) -> dict[str, Any]:
    found = {"aggregate": "sum", **PAID, "property": "amount"}
    return found if within is None else {**found, "within": within}


TWENTY: list[dict[str, Any]] = [
    # windowed aggregates (10)
    {
        "id": "q4-buyer",
        "when": {"aggregate": "count", **PAID, "within": Q4, "op": "gt", "value": 0},
    },
    {"id": "q4-spend", "compute": _sum(Q4)},
    {"id": "singles-day", "when": {**_sum(SINGLES_DAY), "op": "gte", "value": 300}},
    {"id": "h1-spend", "compute": _sum(H1)},
    {
        "id": "recent-year-orders",
        "compute": {"aggregate": "count", **PAID, "within": {"days": 730}},
    },
    {
        "id": "tmall-q4",
        "when": {
            "aggregate": "count",
            **PAID,
            "source": "tmall",
            "within": Q4,
            "op": "gte",
            "value": 2,
        },
    },
    {
        "id": "browser-q4",
        "when": {"aggregate": "count", "event": "page_view", "within": Q4, "op": "gte", "value": 3},
    },
    {
        "id": "q4-category",
        "compute": {"aggregate": "mostFrequent", **PAID, "property": "category", "within": Q4},
    },
    {
        "id": "big-basket-h1",
        "when": {
            "aggregate": "max",
            **PAID,
            "property": "amount",
            "within": H1,
            "op": "gt",
            "value": 500,
        },
    },
    {
        "id": "active-2y",
        "when": {"aggregate": "count", "within": {"days": 730}, "op": "gt", "value": 0},
    },
    # lifetime aggregates, traits, profile fields, other tags (10)
    {"id": "lifetime-spend", "compute": _sum()},
    {
        "id": "spend-level",
        "cases": [
            {"value": "high", "when": {**_sum(), "op": "gte", "value": 3000}},
            {"value": "mid", "when": {**_sum(), "op": "gte", "value": 800}},
        ],
        "otherwise": "low",
    },
    {
        "id": "favourite-category",
        "compute": {"aggregate": "mostFrequent", **PAID, "property": "category"},
    },
    {
        "id": "categories-tried",
        "compute": {"aggregate": "distinctCount", **PAID, "property": "category"},
    },
    {"id": "avg-order", "compute": {"aggregate": "avg", **PAID, "property": "amount"}},
    {"id": "shanghai", "when": {"trait": "city", "op": "eq", "value": "上海"}},
    {
        "id": "tier1-city",
        "when": {"trait": "city", "op": "in", "value": ["上海", "北京", "广州", "深圳"]},
    },
    {
        "id": "multichannel",
        "when": {"profile": "sources", "op": "contains", "value": "wechat_miniapp"},
    },
    {
        "id": "vip",
        "when": {
            "all": [
                {"tag": "spend-level", "op": "eq", "value": "high"},
                {"tag": "q4-buyer", "op": "has"},
            ]
        },
    },
    {
        "id": "win-back",
        "when": {
            "all": [
                {"tag": "spend-level", "op": "in", "value": ["high", "mid"]},
                {"not": {"tag": "q4-buyer", "op": "has"}},
            ]
        },
    },
]


def definitions() -> list[dict[str, Any]]:
    """The twenty as ``TagDefinitionInput`` values."""
    return [{"name": rule["id"], "category": "BEHAVIOR", **rule} for rule in TWENTY]
