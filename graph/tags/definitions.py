"""Tag definitions: what a tag is called, what kind it is, and the rule that decides it.

A definition is parsed whole or refused (``InvalidRule`` with the JSON path of
the bad part); a set of definitions is refused when tags read one another in
a cycle (``TagCycle``), so an order exists in which each tag is evaluated
after every tag it reads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from graph.errors import InvalidRule, TagCycle
from graph.segments.rfm import RfmRule
from graph.tags.aggregates import is_number
from graph.tags.compiled import compile_condition
from graph.tags.conditions import Aggregate, Condition, aggregates_in, tags_named
from graph.tags.evaluation import Explanation, evaluate
from graph.tags.facts import MISSING, Facts
from graph.tags.parsing import parse_compute, parse_condition

TAG_ID = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
# A saved segment is a rule tag under this prefix: its membership is decided, kept
# live and logged as any tag is, and it may be read by rules like any tag.
SEGMENT_PREFIX = "segment/"


def is_segment(tag_id: str) -> bool:
    return tag_id.startswith(SEGMENT_PREFIX)


CATEGORY = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")
BUILT_IN_CATEGORIES = ("BASIC", "BEHAVIOR", "PREFERENCE", "VALUE")


class TagKind(StrEnum):
    MANUAL = "MANUAL"  # added and removed by people
    RULE = "RULE"  # true or absent, by a condition
    LABELLED = "LABELLED"  # the value of the first case that holds
    VALUE = "VALUE"  # an aggregate's value
    RFM = "RFM"  # a score or segment against the RFM model (kept by ``graph.segments``)


@dataclass(frozen=True, slots=True)
class Case:
    value: Any
    when: Condition


@dataclass(frozen=True)
class TagDefinition:
    id: str
    name: str
    category: str
    description: str = ""
    kind: TagKind = TagKind.MANUAL
    when: Condition | None = None
    cases: tuple[Case, ...] = ()
    otherwise: Any = None
    compute: Aggregate | None = None
    rfm: RfmRule | None = None
    # The rule as it was given, to show and to save: parsing it again gives this definition.
    given: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def reads(self) -> set[str]:
        """The tags this one reads."""
        found: set[str] = set()
        for condition in self.conditions():
            found |= tags_named(condition)
        return found

    def conditions(self) -> list[Condition]:
        return [c for c in (self.when, *(case.when for case in self.cases)) if c is not None]

    def aggregates(self) -> list[Aggregate]:
        found = [a for c in self.conditions() for a in aggregates_in(c)]
        if self.rfm is not None:
            found.extend(self.rfm.aggregates())
        return found if self.compute is None else [*found, self.compute]

    @functools.cached_property
    def decide(self) -> Callable[[Facts, Mapping[str, Any]], Any]:
        """The tag's value for a customer (MISSING: it has none), given its manual tags."""
        tag_id = self.id
        if self.kind is TagKind.MANUAL:
            return lambda facts, manual: True if tag_id in manual else MISSING
        if self.kind is TagKind.RULE:
            assert self.when is not None
            when = compile_condition(self.when)
            return lambda facts, manual: True if when(facts) else MISSING
        if self.kind is TagKind.VALUE:
            compute = self.compute
            assert compute is not None
            return lambda facts, manual: facts.aggregate(compute)
        if self.kind is TagKind.RFM:
            rfm = self.rfm
            assert rfm is not None
            return lambda facts, manual: rfm.value(facts)
        cases = [(case.value, compile_condition(case.when)) for case in self.cases]
        otherwise = MISSING if self.otherwise is None else self.otherwise

        def first_case(facts: Facts, manual: Mapping[str, Any]) -> Any:
            for value, when in cases:
                if when(facts):
                    return value
            return otherwise

        return first_case


def parse_definition(
    id: str,
    name: str,
    category: str,
    description: str | None = None,
    when: Any = None,
    cases: Any = None,
    otherwise: Any = None,
    compute: Any = None,
    rfm: Any = None,
) -> TagDefinition:
    """A definition from what a caller sent, or ``InvalidRule`` naming the bad part."""
    if not isinstance(id, str) or not TAG_ID.fullmatch(id.removeprefix(SEGMENT_PREFIX)):
        raise InvalidRule(
            "id must be a slug: lower-case letters, digits, - and _, at most 64", "$.id"
        )
    if not isinstance(name, str) or not name.strip():
        raise InvalidRule("name must not be blank", "$.name")
    if not isinstance(category, str) or not CATEGORY.fullmatch(category.strip()):
        raise InvalidRule(
            f"category must be one of {', '.join(BUILT_IN_CATEGORIES)} or a word of your own",
            "$.category",
        )
    given = {
        k: v
        for k, v in (
            ("when", when),
            ("cases", cases),
            ("otherwise", otherwise),
            ("compute", compute),
            ("rfm", rfm),
        )
        if v is not None
    }
    rules = [k for k in ("when", "cases", "compute", "rfm") if k in given]
    if len(rules) > 1:
        raise InvalidRule(
            "a tag has one of when, cases, compute or rfm, not several", f"$.{rules[1]}"
        )
    if otherwise is not None and cases is None:
        raise InvalidRule("otherwise belongs to cases", "$.otherwise")
    base = TagDefinition(
        id=id,
        name=name.strip(),
        category=category.strip(),
        description=(description or "").strip(),
        given=given,
    )
    if when is not None:
        return _with(base, kind=TagKind.RULE, when=parse_condition(when, "$.when"))
    if compute is not None:
        return _with(base, kind=TagKind.VALUE, compute=parse_compute(compute, "$.compute"))
    if rfm is not None:
        rule = RfmRule.parse(rfm)
        return _with(base, kind=TagKind.RFM, rfm=rule, given={"rfm": rule.as_json()})
    if cases is not None:
        return _with(
            base,
            kind=TagKind.LABELLED,
            cases=_cases(cases),
            otherwise=None if otherwise is None else _label(otherwise, "$.otherwise"),
        )
    return base


def _with(base: TagDefinition, **changes: Any) -> TagDefinition:
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    return TagDefinition(**{**fields, **changes})


def _cases(cases: Any) -> tuple[Case, ...]:
    if not isinstance(cases, list) or not cases:
        raise InvalidRule("cases needs a non-empty list of {value, when}", "$.cases")
    found = []
    for n, case in enumerate(cases):
        path = f"$.cases[{n}]"
        if not isinstance(case, dict) or set(case) != {"value", "when"}:
            raise InvalidRule("a case is an object with value and when", path)
        label = _label(case["value"], f"{path}.value")
        found.append(Case(label, parse_condition(case["when"], f"{path}.when")))
    return tuple(found)


def _label(value: Any, path: str) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if is_number(value) or isinstance(value, bool):
        return value
    raise InvalidRule("a label is a non-empty string, a number or a boolean", path)


def evaluation_order(definitions: Mapping[str, TagDefinition]) -> list[TagDefinition]:
    """Every definition after the ones it reads; ``InvalidRule`` or ``TagCycle`` if none exists.

    Reading a tag that is not defined is refused: a typo would otherwise make a
    rule quietly never hold.
    """
    for definition in definitions.values():
        for read in sorted(definition.reads()):
            if read not in definitions:
                raise InvalidRule(
                    f"tag {definition.id!r} reads tag {read!r}, which is not defined",
                    f"$.{definition.id}",
                )
    order: list[TagDefinition] = []
    state: dict[str, int] = {}  # 1: being visited, 2: placed

    def visit(tag_id: str, path: list[str]) -> None:
        if state.get(tag_id) == 2:
            return
        if state.get(tag_id) == 1:
            cycle = [*path[path.index(tag_id) :], tag_id]
            raise TagCycle(f"tags read one another in a cycle: {' -> '.join(cycle)}", cycle=cycle)
        state[tag_id] = 1
        for read in sorted(definitions[tag_id].reads()):
            visit(read, [*path, tag_id])
        state[tag_id] = 2
        order.append(definitions[tag_id])

    for tag_id in sorted(definitions):
        visit(tag_id, [])
    return order


@dataclass(frozen=True, slots=True)
class TagOutcome:
    """A tag's value for one customer (absent: the tag does not apply) and why."""

    value: Any
    explanation: Explanation


def evaluate_tags(
    order: Iterable[TagDefinition], facts: Facts, manual: Mapping[str, Any] | None = None
) -> dict[str, TagOutcome]:
    """Every rule tag that applies to the customer of ``facts``, in ``evaluation_order``.

    Manual tags are whatever people set (``manual``); they are read by other
    tags like any other. ``facts.tag`` must answer from what is evaluated
    here, so ``facts`` is told each outcome as it is found (``tags``).
    """
    found: dict[str, TagOutcome] = {}
    told: dict[str, Any] = facts.tags
    for definition in order:
        outcome = _outcome(definition, facts, manual or {})
        if outcome is not None:
            found[definition.id] = outcome
            told[definition.id] = outcome.value
        else:
            told.pop(definition.id, None)
    return found


def _outcome(
    definition: TagDefinition, facts: Facts, manual: Mapping[str, Any]
) -> TagOutcome | None:
    if definition.kind is TagKind.MANUAL:
        if definition.id not in manual:
            return None
        return TagOutcome(True, {"manual": manual[definition.id]})
    if definition.kind is TagKind.RULE:
        assert definition.when is not None
        held, explanation = evaluate(definition.when, facts)
        return TagOutcome(True, explanation) if held else None
    if definition.kind is TagKind.VALUE:
        assert definition.compute is not None
        value = facts.aggregate(definition.compute)
        if value is MISSING:
            return None
        return TagOutcome(value, {**definition.given["compute"], "seen": value})
    if definition.kind is TagKind.RFM:
        assert definition.rfm is not None
        value = definition.rfm.value(facts)
        return None if value is MISSING else TagOutcome(value, definition.rfm.explain(facts))
    tried = []
    for case in definition.cases:
        held, explanation = evaluate(case.when, facts)
        tried.append({"value": case.value, "when": explanation, "held": held})
        if held:
            return TagOutcome(case.value, {"cases": tried})
    if definition.otherwise is None:
        return None
    return TagOutcome(definition.otherwise, {"cases": tried, "otherwise": definition.otherwise})


def tag_values(
    order: Iterable[TagDefinition], facts: Facts, manual: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What ``evaluate_tags`` finds, values only: the explanations are left to be made on read."""
    found: dict[str, Any] = {}
    told: dict[str, Any] = facts.tags
    manual = manual or {}
    for definition in order:
        value = definition.decide(facts, manual)
        if value is not MISSING:
            found[definition.id] = told[definition.id] = value
        else:
            told.pop(definition.id, None)
    return found
