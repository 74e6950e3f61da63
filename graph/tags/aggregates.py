"""Aggregates of a customer's events, computed from the events themselves.

This is the definition every faster way of computing them (``rollups``) must
agree with.
Over no events at all, ``count``, ``sum`` and ``distinctCount`` are 0 and
the others unknown (None): a customer who never ordered spent 0, but has no
average order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from fractions import Fraction
from typing import Any, NamedTuple

from graph.tags.conditions import Aggregate


class EventFact(NamedTuple):
    timestamp: datetime
    seq: int
    name: str | None
    source: str
    properties: dict[str, Any]


def selected(aggregate: Aggregate, events: Iterable[EventFact], now: datetime) -> list[EventFact]:
    """The events an aggregate takes: its names, its source, its window."""
    low, high = (None, None) if aggregate.within is None else aggregate.within.bounds(now)
    names, source = aggregate.events, aggregate.source
    return [
        e
        for e in events
        if (names is None or e.name in names)
        and (source is None or e.source == source)
        and (low is None or e.timestamp >= low)
        and (high is None or e.timestamp <= high)
    ]


def aggregate_events(aggregate: Aggregate, events: Iterable[EventFact], now: datetime) -> Any:
    """The aggregate's value over ``events``, or None when it has none."""
    chosen = selected(aggregate, events, now)
    prop = aggregate.property_name
    if prop is None:  # count only (the parser sees to it)
        return len(chosen)
    in_order = sorted(chosen, key=lambda e: (e.timestamp, e.seq))
    values = [v for e in in_order if (v := e.properties.get(prop)) is not None]
    return summarise(aggregate.function, values)


def summarise(function: str, values: list[Any]) -> Any:
    """``function`` of the property's values in time order (None: not one was present)."""
    if function == "count":
        return len(values)
    if function == "distinctCount":
        return len({value_key(v) for v in values})
    if function in ("first", "last"):
        return (values[0] if function == "first" else values[-1]) if values else None
    if function == "mostFrequent":
        return most_frequent(values)
    numbers = [v for v in values if is_number(v)]
    total = sum(scaled(v) for v in numbers)
    if function == "sum":
        return exact_sum(total, any(isinstance(v, float) for v in numbers))
    if not numbers:
        return None
    if function == "avg":
        return exact_mean(total, len(numbers))
    return min(numbers) if function == "min" else max(numbers)


# Every finite float is a whole number of 2**-1074 (the smallest step between
# floats), so numbers counted in those steps add up as plain integers: exactly,
# whatever the order, and far faster than fractions.
_STEP_BITS = 1074


def scaled(value: int | float) -> int:
    """A finite number as a whole count of 2**-1074."""
    if isinstance(value, int):
        return value << _STEP_BITS
    numerator, denominator = value.as_integer_ratio()  # the denominator is a power of 2
    return numerator << (_STEP_BITS + 1 - denominator.bit_length())


def exact_sum(total: int, floats: bool) -> int | float:
    """A sum of ``scaled`` numbers rounded once, as the values' own type: an integer when all were.

    Summing exactly makes the result independent of the order values are
    added in, so a sum kept per day and added up equals the sum of the events.
    """
    if floats:
        return float(Fraction(total, 1 << _STEP_BITS))
    return total >> _STEP_BITS


def exact_mean(total: int, count: int) -> float:
    return float(Fraction(total, count << _STEP_BITS))


def most_frequent(values: list[Any]) -> Any:
    """The value seen most often; of equals, the one seen last, so a new habit wins a tie."""
    counts: dict[Any, tuple[int, int, Any]] = {}
    for position, value in enumerate(values):
        key = value_key(value)
        held = counts.get(key)
        counts[key] = (1 if held is None else held[0] + 1, position, value)
    if not counts:
        return None
    return max(counts.values(), key=lambda c: (c[0], c[1]))[2]


def canonical(value: Any) -> str:
    """One text per JSON value, so 1 and 1.0 are one value and objects compare by content."""
    if is_number(value):
        value = float(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def value_key(value: Any) -> Any:
    """One key per JSON value, as ``canonical`` tells them apart, without writing text.

    Numbers are one kind (1 and 1.0 are one value) and never equal to a
    boolean; lists and objects, rare as event properties, fall back to text.
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is float or kind is int:
        return (float(value),)
    if kind is bool:
        return (value, 0)
    return (canonical(value),)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
