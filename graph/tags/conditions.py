"""The rule language's conditions, parsed: what each kind of condition looks at and asks.

A condition is data (JSON, see ``graph.tags.parsing``); these are its typed
form, kept beside the JSON it came from so an explanation can quote it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graph.tags.moments import Window

COMPARISONS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "notIn")
TEXT_TESTS = ("contains", "startsWith")
PRESENCE = ("exists", "missing")
OPERATORS = (*COMPARISONS, *TEXT_TESTS, *PRESENCE)

PROFILE_FIELDS = ("firstSeen", "lastSeen", "eventCount", "sources")
AGGREGATES = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "last",
    "distinctCount",
    "mostFrequent",
)
NUMERIC_AGGREGATES = ("count", "sum", "avg", "min", "max", "distinctCount")
ACCOUNT_FIELDS = (
    "industry",
    "region",
    "sizeBand",
    "id",
    "title",
    "department",
    "seniority",
    "roles",
)
QUANTIFIERS = ("any", "all", "none")


@dataclass(frozen=True, slots=True)
class Test:
    """An operator and its operand, times already parsed (``DaysAgo`` or ``datetime``)."""

    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class NotOf:
    item: Condition
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class TraitIs:
    name: str
    test: Test
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ProfileIs:
    name: str
    test: Test
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One number or value from the customer's events: which, of which events, when."""

    function: str
    events: tuple[str, ...] | None  # event names; None: every event
    property_name: str | None
    source: str | None  # the integration; None: any
    within: Window | None
    # Aggregates key the values a customer's facts keep: hashed once, not per lookup.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.function, self.events, self.property_name, self.source, self.within)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class AggregateIs:
    aggregate: Aggregate
    test: Test
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class TagIs:
    """Another tag: ``has`` (it holds, or has a value), or a test of its value."""

    tag: str
    test: Test
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class LinkIs:
    """A leaf inside ``account``: a field of the account or of this customer's link to it."""

    name: str
    test: Test
    source: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class AccountsAre:
    """``inner`` holds for any, all or none of the customer's account links."""

    quantifier: str
    inner: Condition
    source: dict[str, Any] = field(compare=False, hash=False)


Condition = AllOf | AnyOf | NotOf | TraitIs | ProfileIs | AggregateIs | TagIs | LinkIs | AccountsAre


def walk(condition: Condition) -> Iterator[Condition]:
    """Every condition in ``condition``'s tree, itself included (inside ``account`` too)."""
    pending: list[Condition] = [condition]
    while pending:
        c = pending.pop()
        yield c
        if isinstance(c, AllOf | AnyOf):
            pending.extend(c.items)
        elif isinstance(c, NotOf):
            pending.append(c.item)
        elif isinstance(c, AccountsAre):
            pending.append(c.inner)


def tags_named(condition: Condition) -> set[str]:
    """The tags a condition reads: a definition depends on them, so they are evaluated first."""
    return {c.tag for c in walk(condition) if isinstance(c, TagIs)}


def aggregates_in(condition: Condition) -> list[Aggregate]:
    """The aggregates a condition reads, so facts can compute each once."""
    return [c.aggregate for c in walk(condition) if isinstance(c, AggregateIs)]
