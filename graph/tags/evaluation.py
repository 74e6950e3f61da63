"""Deciding a condition against a customer's facts, and saying why.

The explanation is the condition itself with, at each leaf, the value seen
(``seen``; null when unknown) and whether the leaf held, and at each
``all``/``any``/``not`` whether it held. Every branch is evaluated, not
only until the answer is known, so an explanation shows everything that
held and everything that did not.

Unknown values: every test is false but ``missing`` (``ne`` and ``notIn``
too, since unknown is not "not equal"). Values of different kinds (a text
"30" and a number 30) are different: ``eq`` is false, ``ne`` true, and an
ordering test false.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from graph.tags.aggregates import is_number
from graph.tags.conditions import (
    AccountsAre,
    AggregateIs,
    AllOf,
    AnyOf,
    Condition,
    LinkIs,
    NotOf,
    ProfileIs,
    TagIs,
    Test,
    TraitIs,
)
from graph.tags.facts import MISSING, Facts
from graph.tags.moments import DaysAgo, instant, parse_instant
from graph.tags.parsing import SENIORITY_ORDER

Explanation = dict[str, Any]


def evaluate(
    condition: Condition, facts: Facts, link: Mapping[str, Any] | None = None
) -> tuple[bool, Explanation]:
    """Whether ``condition`` holds for the customer of ``facts``, and the explanation."""
    if isinstance(condition, AllOf | AnyOf):
        parts = [evaluate(c, facts, link) for c in condition.items]
        held = (all if isinstance(condition, AllOf) else any)(h for h, _ in parts)
        key = "all" if isinstance(condition, AllOf) else "any"
        return held, {key: [e for _, e in parts], "held": held}
    if isinstance(condition, NotOf):
        inner, explained = evaluate(condition.item, facts, link)
        return not inner, {"not": explained, "held": not inner}
    if isinstance(condition, AccountsAre):
        return _accounts(condition, facts)
    held, seen = _leaf(condition, facts, link)
    extra: dict[str, Any] = {}
    if isinstance(condition, AggregateIs) and condition.aggregate.within is not None:
        low, high = condition.aggregate.within.bounds(facts.now)
        extra["window"] = {"from": _json(low), "to": _json(high)}
    return held, {**condition.source, **extra, "seen": _json(seen), "held": held}


def holds(condition: Condition, facts: Facts, link: Mapping[str, Any] | None = None) -> bool:
    """Whether ``condition`` holds, as ``evaluate`` says, without building its explanation.

    Tags are decided on every write that touches a customer, and read far
    less often than written: the explanation is made when it is read.
    """
    if isinstance(condition, AllOf):
        return all(holds(c, facts, link) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(holds(c, facts, link) for c in condition.items)
    if isinstance(condition, NotOf):
        return not holds(condition.item, facts, link)
    if isinstance(condition, AccountsAre):
        found = [holds(condition.inner, facts, each) for each in facts.links()]
        return quantified(condition.quantifier, found)
    return _leaf(condition, facts, link)[0]


def _leaf(condition: Condition, facts: Facts, link: Mapping[str, Any] | None) -> tuple[bool, Any]:
    """Whether a leaf holds, and the value it saw."""
    now = facts.now
    test: Test
    if isinstance(condition, TraitIs):
        seen, test = facts.trait(condition.name), condition.test
    elif isinstance(condition, ProfileIs):
        seen, test = facts.profile(condition.name), condition.test
    elif isinstance(condition, AggregateIs):
        seen, test = facts.aggregate(condition.aggregate), condition.test
    elif isinstance(condition, TagIs):
        seen, test = facts.tag(condition.tag), condition.test
        if test.op == "has":
            return seen is not MISSING, seen
    else:
        assert isinstance(condition, LinkIs)
        seen = MISSING if link is None else link.get(condition.name, MISSING)
        if seen is None:
            seen = MISSING
        test = condition.test
        if condition.name == "seniority":
            return passes(_ranked(test), _rank(seen), now), seen
    return passes(test, seen, now), seen


def quantified(quantifier: str, holding: list[bool]) -> bool:
    """``any``, ``all`` or ``none`` of the links held; with no accounts, not "all of them"."""
    if quantifier == "any":
        return any(holding)
    if quantifier == "all":
        return bool(holding) and all(holding)
    return not any(holding)


def _accounts(condition: AccountsAre, facts: Facts) -> tuple[bool, Explanation]:
    links = facts.links()
    results = [(evaluate(condition.inner, facts, link), link) for link in links]
    held = quantified(condition.quantifier, [h for (h, _), _ in results])
    return held, {
        **{k: v for k, v in condition.source.items() if k != "account"},
        "account": condition.source["account"],
        "links": [
            {"account": link.get("id"), "held": h, "explanation": e} for (h, e), link in results
        ],
        "held": held,
    }


def passes(test: Test, seen: Any, now: datetime) -> bool:
    """Whether ``seen`` passes ``test`` (see the module docstring for unknowns and kinds)."""
    op, value = test.op, test.value
    if seen is MISSING or seen is None:
        return op == "missing"
    if op in ("exists", "missing", "has"):
        empty = isinstance(seen, list | tuple) and not seen
        return empty if op == "missing" else not empty
    if isinstance(seen, list | tuple):
        if op == "contains":
            return any(_equal(item, value) for item in seen)
        if op in ("in", "notIn"):
            found = any(_equal(item, v) for item in seen for v in value)
            return found if op == "in" else not found
        return False
    if op == "contains":
        return isinstance(seen, str) and isinstance(value, str) and value in seen
    if op == "startsWith":
        return isinstance(seen, str) and isinstance(value, str) and seen.startswith(value)
    if op in ("eq", "ne"):
        if isinstance(value, DaysAgo | datetime):
            moment = _moment(seen)
            equal = moment is not None and moment == instant(value, now)
        else:
            equal = _equal(seen, value)
        return equal if op == "eq" else not equal
    if op in ("in", "notIn"):
        found = any(_equal(seen, v) for v in value)
        return found if op == "in" else not found
    if op == "between":
        low, high = value
        return _order(seen, low, now) in (0, 1) and _order(seen, high, now) in (0, -1)
    order = _order(seen, value, now)
    if order is None:
        return False
    return {"lt": order < 0, "lte": order <= 0, "gt": order > 0, "gte": order >= 0}[op]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b
    return type(a) is type(b) and a == b


def _order(seen: Any, value: Any, now: datetime) -> int | None:
    """-1, 0 or 1 as ``seen`` is below, at or above ``value``; None when they do not compare."""
    if isinstance(value, DaysAgo | datetime):
        moment = _moment(seen)
        if moment is None:
            return None
        seen, value = moment, instant(value, now)
    elif (
        isinstance(seen, bool)
        or isinstance(value, bool)
        or not (
            (is_number(seen) and is_number(value))
            or (isinstance(seen, str) and isinstance(value, str))
        )
    ):
        return None
    return int((seen > value) - (seen < value))


def _moment(seen: Any) -> datetime | None:
    if isinstance(seen, datetime):
        return seen
    return parse_instant(seen) if isinstance(seen, str) else None


def _rank(seen: Any) -> Any:
    """A seniority as its rank, so "DIRECTOR or above" is ``gte``; UNKNOWN is not ranked."""
    return SENIORITY_ORDER.index(seen) if seen in SENIORITY_ORDER else MISSING


def _ranked(test: Test) -> Test:
    value = test.value
    if test.op == "between" or test.op in ("in", "notIn"):
        value = tuple(SENIORITY_ORDER.index(v) for v in value)
    elif isinstance(value, str):
        value = SENIORITY_ORDER.index(value)
    return Test(test.op, value)


def _json(value: Any) -> Any:
    """A value seen, as JSON: times in ISO 8601, unknown as null."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
