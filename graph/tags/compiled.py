"""Conditions made into functions once, so deciding a customer's tags walks no tree.

Every write decides the tags of every customer it touches, so a condition
is asked thousands of times a second. ``holds`` asks, at each node, what
kind of node it is and, at each leaf, what kind of test; a compiled
condition has asked both once. The common tests (a number against a
number, a text against a text or a set of texts) have their own short
path; every other value takes ``passes``, the one definition of what a
test means, so a compiled condition holds exactly when ``holds`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from graph.tags.aggregates import is_number
from graph.tags.conditions import (
    AccountsAre,
    AggregateIs,
    AllOf,
    AnyOf,
    Condition,
    NotOf,
    ProfileIs,
    TagIs,
    Test,
    TraitIs,
)
from graph.tags.evaluation import holds, passes
from graph.tags.facts import MISSING, Facts

Check = Callable[[Any, datetime], bool]
Holds = Callable[[Facts], bool]


def compile_condition(condition: Condition) -> Holds:
    """A function of a customer's facts that holds when ``condition`` does."""
    if isinstance(condition, AllOf):
        return _all(tuple(compile_condition(c) for c in condition.items))
    if isinstance(condition, AnyOf):
        return _any(tuple(compile_condition(c) for c in condition.items))
    if isinstance(condition, NotOf):
        inner = compile_condition(condition.item)
        return lambda facts: not inner(facts)
    if isinstance(condition, TraitIs):
        name, check = condition.name, compile_test(condition.test)
        return lambda facts: check(facts.trait(name), facts.now)
    if isinstance(condition, AggregateIs):
        aggregate, check = condition.aggregate, compile_test(condition.test)
        return lambda facts: check(facts.aggregate(aggregate), facts.now)
    if isinstance(condition, ProfileIs):
        field, check = condition.name, compile_test(condition.test)
        return lambda facts: check(facts.profile(field), facts.now)
    if isinstance(condition, TagIs):
        tag = condition.tag
        if condition.test.op == "has":
            return lambda facts: facts.tag(tag) is not MISSING
        check = compile_test(condition.test)
        return lambda facts: check(facts.tag(tag), facts.now)
    # Account links: as many as a customer has links, and rare in rules.
    assert isinstance(condition, AccountsAre)
    return lambda facts: holds(condition, facts)


# Loops, not all() and any() over a generator: these run per node per customer.
def _all(parts: Sequence[Holds]) -> Holds:
    def all_hold(facts: Facts) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(facts):
                return False
        return True

    return all_hold


def _any(parts: Sequence[Holds]) -> Holds:
    def any_holds(facts: Facts) -> bool:
        for part in parts:  # noqa: SIM110
            if part(facts):
                return True
        return False

    return any_holds


def compile_test(test: Test) -> Check:
    """``passes`` for one test, with a short path for the values rules compare most."""
    op, value = test.op, test.value
    if op in ("gt", "gte", "lt", "lte") and is_number(value):
        compare = _NUMBER_ORDER[op]

        def number_order(seen: Any, now: datetime) -> bool:
            kind = type(seen)
            if (kind is int or kind is float) and seen == seen:  # not NaN
                return compare(seen, value)
            return passes(test, seen, now)

        return number_order
    if op in ("eq", "ne") and isinstance(value, str):
        equal = op == "eq"

        def text_equality(seen: Any, now: datetime) -> bool:
            if type(seen) is str:
                return (seen == value) is equal
            return passes(test, seen, now)

        return text_equality
    if op in ("eq", "ne") and is_number(value):
        equal = op == "eq"

        def number_equality(seen: Any, now: datetime) -> bool:
            kind = type(seen)
            if kind is int or kind is float:
                return (seen == value) is equal
            return passes(test, seen, now)

        return number_equality
    if op in ("in", "notIn") and all(isinstance(v, str) for v in value):
        texts, inside = frozenset(value), op == "in"

        def membership(seen: Any, now: datetime) -> bool:
            if type(seen) is str:
                return (seen in texts) is inside
            return passes(test, seen, now)

        return membership
    return lambda seen, now: passes(test, seen, now)


_NUMBER_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
