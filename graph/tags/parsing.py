"""Reading the rule language from JSON, refusing a bad rule with the path of its bad part.

A rule is checked whole before anything is saved: an unknown key is refused
as well as an unknown operator, since a misspelt ``within`` silently read as
"all time" would be worse than an error. Every refusal is ``InvalidRule``
with a JSON path such as ``$.when.all[1].within.days``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeGuard

from graph.accounts.seniority import Seniority
from graph.errors import InvalidRule
from graph.tags.conditions import (
    ACCOUNT_FIELDS,
    AGGREGATES,
    NUMERIC_AGGREGATES,
    OPERATORS,
    PROFILE_FIELDS,
    QUANTIFIERS,
    AccountsAre,
    Aggregate,
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
from graph.tags.moments import DaysAgo, Moment, Window, parse_instant

# What a subject's values are, which decides the operands its tests may take.
NUMBER, TIME, TEXT, LIST, SENIORITY, ANY = "number", "time", "text", "list", "seniority", "any"
SENIORITY_ORDER = tuple(s.value for s in Seniority if s is not Seniority.UNKNOWN)[::-1]
MAX_DAYS = 36_600  # a century: a window longer than that is a typo
_PROFILE_KINDS = {"firstSeen": TIME, "lastSeen": TIME, "eventCount": NUMBER, "sources": LIST}


def parse_condition(obj: Any, path: str = "$", in_account: bool = False) -> Condition:
    """The condition ``obj`` spells, or ``InvalidRule`` naming the first bad part."""
    if not isinstance(obj, dict):
        raise InvalidRule("a condition must be a JSON object", path)
    kinds = [
        k
        for k in ("all", "any", "not", "trait", "profile", "aggregate", "tag", "account", "field")
        if k in obj
    ]
    if len(kinds) != 1:
        raise InvalidRule(
            "a condition needs exactly one of all, any, not, trait, profile, aggregate, tag,"
            f" account{', field' if in_account else ''}",
            path,
        )
    kind = kinds[0]
    if kind in ("all", "any"):
        _only(obj, path, {kind})
        items = obj[kind]
        if not isinstance(items, list) or not items:
            raise InvalidRule(f"{kind} needs a non-empty list of conditions", f"{path}.{kind}")
        parsed = tuple(
            parse_condition(item, f"{path}.{kind}[{n}]", in_account) for n, item in enumerate(items)
        )
        return AllOf(parsed, obj) if kind == "all" else AnyOf(parsed, obj)
    if kind == "not":
        _only(obj, path, {"not"})
        return NotOf(parse_condition(obj["not"], f"{path}.not", in_account), obj)
    if in_account and kind != "field":
        raise InvalidRule(
            f"inside account only field conditions (and all, any, not) apply, not {kind}", path
        )
    if kind == "field":
        if not in_account:
            raise InvalidRule("a field condition belongs inside account", path)
        _only(obj, path, {"field", "op", "value"})
        name = _choice(obj["field"], ACCOUNT_FIELDS, f"{path}.field")
        kind_of = {"seniority": SENIORITY, "roles": LIST}.get(name, TEXT)
        return LinkIs(name, _test(obj, path, kind_of), obj)
    if kind == "trait":
        _only(obj, path, {"trait", "op", "value"})
        name = obj["trait"]
        if not isinstance(name, str) or not name:
            raise InvalidRule("trait must be a trait's name", f"{path}.trait")
        return TraitIs(name, _test(obj, path, ANY), obj)
    if kind == "profile":
        _only(obj, path, {"profile", "op", "value"})
        name = _choice(obj["profile"], PROFILE_FIELDS, f"{path}.profile")
        return ProfileIs(name, _test(obj, path, _PROFILE_KINDS[name]), obj)
    if kind == "aggregate":
        _only(obj, path, {"aggregate", "event", "property", "source", "within", "op", "value"})
        aggregate = parse_aggregate(obj, path)
        return AggregateIs(aggregate, _test(obj, path, _aggregate_kind(aggregate)), obj)
    if kind == "tag":
        _only(obj, path, {"tag", "op", "value"})
        name = obj["tag"]
        if not isinstance(name, str) or not name:
            raise InvalidRule("tag must be a tag's id", f"{path}.tag")
        if obj.get("op") == "has":
            if "value" in obj:
                raise InvalidRule("has takes no value", f"{path}.value")
            return TagIs(name, Test("has"), obj)
        return TagIs(name, _test(obj, path, ANY), obj)
    _only(obj, path, {"account", "quantifier"})
    quantifier = _choice(obj.get("quantifier", "any"), QUANTIFIERS, f"{path}.quantifier")
    return AccountsAre(
        quantifier, parse_condition(obj["account"], f"{path}.account", in_account=True), obj
    )


def parse_test(obj: dict[str, Any], path: str, kind: str) -> Test:
    """A leaf's ``op`` and ``value``, checked for a subject whose values are of ``kind``."""
    return _test(obj, path, kind)


def parse_aggregate(obj: dict[str, Any], path: str) -> Aggregate:
    """The aggregate part of ``obj`` (also a value tag's whole ``compute``)."""
    function = _choice(obj.get("aggregate"), AGGREGATES, f"{path}.aggregate")
    events = obj.get("event")
    names: tuple[str, ...] | None
    if events is None:
        names = None
    elif isinstance(events, str) and events.strip():
        names = (events.strip(),)
    elif isinstance(events, list) and events and all(isinstance(e, str) and e for e in events):
        names = tuple(sorted({e.strip() for e in events}))
    else:
        raise InvalidRule("event must be an event name or a list of them", f"{path}.event")
    prop = obj.get("property")
    if prop is not None and (not isinstance(prop, str) or not prop):
        raise InvalidRule("property must be a property's name", f"{path}.property")
    if prop is None and function != "count":
        raise InvalidRule(f"{function} needs a property to aggregate", f"{path}.property")
    source = obj.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise InvalidRule("source must be a source's name", f"{path}.source")
    within = None if "within" not in obj else parse_window(obj["within"], f"{path}.within")
    return Aggregate(function, names, prop, None if source is None else source.strip(), within)


def parse_compute(obj: Any, path: str) -> Aggregate:
    """A value tag's ``compute``: one aggregate, with no test."""
    if not isinstance(obj, dict):
        raise InvalidRule("compute must be an aggregate object", path)
    _only(obj, path, {"aggregate", "event", "property", "source", "within"})
    return parse_aggregate(obj, path)


def parse_window(obj: Any, path: str) -> Window:
    if not isinstance(obj, dict):
        raise InvalidRule("within must be {days} or {from, to}", path)
    if "days" in obj:
        _only(obj, path, {"days"})
        days = obj["days"]
        if not _is_number(days) or not 0 < days <= MAX_DAYS:
            raise InvalidRule(
                f"days must be a number above 0 and at most {MAX_DAYS}", f"{path}.days"
            )
        return Window(DaysAgo(days), None)
    _only(obj, path, {"from", "to"})
    if not obj:
        raise InvalidRule("within needs days, or from and/or to", path)
    start = None if obj.get("from") is None else parse_moment(obj["from"], f"{path}.from")
    end = None if obj.get("to") is None else parse_moment(obj["to"], f"{path}.to")
    if start is None and end is None:
        raise InvalidRule("within needs days, or from and/or to", path)
    if start is not None and end is not None and _later(start, end):
        raise InvalidRule("from is after to: the window holds no time", path)
    return Window(start, end)


def parse_moment(obj: Any, path: str) -> Moment:
    """An ISO 8601 time or ``{"daysAgo": N}``."""
    if isinstance(obj, dict):
        _only(obj, path, {"daysAgo"})
        days = obj.get("daysAgo")
        if not _is_number(days) or not 0 <= days <= MAX_DAYS:
            raise InvalidRule(f"daysAgo must be a number from 0 to {MAX_DAYS}", f"{path}.daysAgo")
        return DaysAgo(days)
    if isinstance(obj, str) and (found := parse_instant(obj)) is not None:
        return found
    raise InvalidRule("a time is an ISO 8601 string or {daysAgo: N}", path)


def _later(a: Moment, b: Moment) -> bool:
    """Whether ``a`` is after ``b`` whatever the day: only when both are one kind of time."""
    if isinstance(a, DaysAgo) and isinstance(b, DaysAgo):
        return a.days < b.days
    if not isinstance(a, DaysAgo) and not isinstance(b, DaysAgo):
        return a > b
    return False


def _aggregate_kind(aggregate: Aggregate) -> str:
    return NUMBER if aggregate.function in NUMERIC_AGGREGATES else ANY


def _test(obj: dict[str, Any], path: str, kind: str) -> Test:
    """The operator and operand of a leaf, checked against what the subject's values are."""
    op = obj.get("op")
    if op not in OPERATORS:
        raise InvalidRule(f"op must be one of {', '.join(OPERATORS)}", f"{path}.op")
    where = f"{path}.value"
    if op in ("exists", "missing"):
        if "value" in obj:
            raise InvalidRule(f"{op} takes no value", where)
        return Test(op)
    if "value" not in obj:
        raise InvalidRule(f"{op} needs a value", where)
    value = obj["value"]
    if kind == LIST:
        if op == "contains":
            return Test(op, _scalar(value, where))
        if op in ("in", "notIn"):
            return Test(op, _list(value, where, lambda v, p: _scalar(v, p)))
        raise InvalidRule(f"{op} does not apply to a list; use contains, in or notIn", f"{path}.op")
    if op in ("contains", "startsWith"):
        if kind not in (TEXT, ANY):
            raise InvalidRule(f"{op} applies to text only", f"{path}.op")
        if not isinstance(value, str):
            raise InvalidRule(f"{op} needs a string", where)
        return Test(op, value)
    if op in ("in", "notIn"):
        if kind == TIME:
            raise InvalidRule(f"{op} does not apply to times; use between", f"{path}.op")
        return Test(op, _list(value, where, lambda v, p: _operand(v, p, kind, moments=False)))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidRule("between needs [low, high]", where)
        low = _operand(value[0], f"{where}[0]", kind)
        high = _operand(value[1], f"{where}[1]", kind)
        if _out_of_order(low, high, kind, where):
            raise InvalidRule("between needs low <= high", where)
        return Test(op, (low, high))
    return Test(op, _operand(value, where, kind))


def _operand(value: Any, path: str, kind: str, moments: bool = True) -> Any:
    """One operand for a subject of ``kind``: times parsed, seniority checked, types matched."""
    if kind == NUMBER:
        if not _is_number(value):
            raise InvalidRule("a number is needed here", path)
        return value
    if kind == TIME:
        return parse_moment(value, path)
    if kind == TEXT:
        if not isinstance(value, str):
            raise InvalidRule("a string is needed here", path)
        return value
    if kind == SENIORITY:
        return _choice(value, SENIORITY_ORDER, path)
    if moments and isinstance(value, dict):
        return parse_moment(value, path)
    return _scalar(value, path)


def _out_of_order(low: Any, high: Any, kind: str, path: str) -> bool:
    """Whether ``[low, high]`` is empty; refused outright when the two cannot be compared."""
    if kind == SENIORITY:
        return SENIORITY_ORDER.index(low) > SENIORITY_ORDER.index(high)
    if isinstance(low, DaysAgo | datetime) and isinstance(high, DaysAgo | datetime):
        return _later(low, high)
    if _is_number(low) and _is_number(high):
        return bool(low > high)
    if isinstance(low, str) and isinstance(high, str):
        return low > high
    raise InvalidRule("between needs two numbers, two strings or two times", path)


def _scalar(value: Any, path: str) -> Any:
    if isinstance(value, str | bool) or _is_number(value):
        return value
    raise InvalidRule("a string, number or boolean is needed here", path)


def _list(value: Any, path: str, item: Any) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRule("a non-empty list is needed here", path)
    return tuple(item(v, f"{path}[{n}]") for n, v in enumerate(value))


def _choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if value not in allowed:
        raise InvalidRule(f"must be one of {', '.join(allowed)}", path)
    assert isinstance(value, str)
    return value


def _only(obj: dict[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidRule(f"unknown key {unknown[0]!r} here", f"{path}.{unknown[0]}")


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
