"""Rollups answer every aggregate exactly as the customer's events do, at any moment."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from graph.config import TraitsConfig
from graph.errors import InvalidRule
from graph.models import ChangeSet, CustomerRecord, StoredEvent
from graph.profiles import survive
from graph.tags.aggregates import exact_mean, exact_sum, scaled, value_key
from graph.tags.conditions import AGGREGATES
from graph.tags.facts import CustomerFacts
from graph.tags.parsing import parse_compute
from graph.tags.rollups import Bucket, Rollup, RollupFacts, as_facts, rollup_of
from graph.tags.tagger import _merges

NOW = datetime(2026, 9, 1, 12, 30, tzinfo=UTC)
NAMES = ["order_paid", "page_view", None]
SOURCES = ["web", "tmall"]

values = st.one_of(
    st.integers(min_value=-2, max_value=4),
    st.sampled_from([0.1, 2.0, 299.9, -1.5]),
    st.sampled_from(["护肤", "彩妆", "数码", "1", ""]),
    st.booleans(),
    st.none(),
)


@st.composite
def events(draw: st.DrawFn) -> list[StoredEvent]:
    made = []
    # Over a few days, many events share a day (a bucket summed, not read event by event);
    # over months, windows take whole months.
    span = 24 * draw(st.sampled_from([1, 3, 20, 120]))
    for seq in range(draw(st.integers(min_value=0, max_value=40))):
        hours = draw(st.integers(min_value=-48, max_value=span))
        stamp = NOW - timedelta(hours=hours, minutes=draw(st.sampled_from([0, 1, 59])))
        name = draw(st.sampled_from(NAMES))
        props = draw(st.dictionaries(st.sampled_from(["amount", "category"]), values, max_size=2))
        made.append(
            StoredEvent(
                seq,
                f"e{seq}",
                draw(st.sampled_from(SOURCES)),
                stamp,
                stamp,
                [("cookie_id", "c")],
                {"city": draw(st.sampled_from(["上海", "北京"]))},
                name=name,
                properties=(props or None) if name else None,
            )
        )
    return made


moments = st.one_of(
    st.integers(min_value=0, max_value=100).map(lambda d: {"daysAgo": d}),
    st.integers(min_value=0, max_value=24 * 100).map(
        lambda h: (NOW - timedelta(hours=h)).isoformat()
    ),
)
windows = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=100).map(lambda d: {"days": d}),
    st.fixed_dictionaries({}, optional={"from": moments, "to": moments}).filter(bool),
)


@st.composite
def aggregates(draw: st.DrawFn) -> dict[str, Any]:
    function = draw(st.sampled_from(AGGREGATES))
    rule: dict[str, Any] = {"aggregate": function}
    name = draw(st.sampled_from(NAMES))
    if name is not None:
        rule["event"] = name
    if function != "count" or draw(st.booleans()):
        rule["property"] = draw(st.sampled_from(["amount", "category"]))
    source = draw(st.sampled_from([None, *SOURCES]))
    if source is not None:
        rule["source"] = source
    window = draw(windows)
    if window is not None:
        rule["within"] = window
    return rule


def reference(made: list[StoredEvent], now: datetime) -> CustomerFacts:
    stamps = [e.timestamp for e in made]
    first, last = (min(stamps), max(stamps)) if stamps else (None, None)
    return CustomerFacts(now, {}, first, last, [], as_facts(made))


def same(a: Any, b: Any) -> bool:
    """Equal, and a flag is never a number (``True == 1`` in Python, not in the rules)."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


@settings(max_examples=300, deadline=None)
@given(
    made=events(),
    rules=st.lists(aggregates(), min_size=1, max_size=4),
    later=st.integers(min_value=0, max_value=24 * 10),
    cut=st.integers(min_value=0, max_value=40),
)
def test_rollup_answers_as_the_events_do(
    made: list[StoredEvent], rules: list[dict[str, Any]], later: int, cut: int
) -> None:
    now = NOW + timedelta(hours=later)
    earlier = Rollup()
    earlier.add(made[:cut])  # in arrival order, in two goes
    for rule in rules:  # months summed for the first part must not linger in the second
        with contextlib.suppress(InvalidRule):
            RollupFacts(now, {}, earlier).aggregate(parse_compute(rule, "$"))
    built = earlier.with_events(made[cut:])
    assert RollupFacts(now, {}, earlier).profile("eventCount") == len(made[:cut])
    whole = rollup_of(made)
    stored = Rollup.from_head(whole.head_json())  # written and read back
    stored.buckets = {k: Bucket.stored(b.text()) for k, b in whole.buckets.items()}
    for rollup in (built, stored):
        facts, truth = RollupFacts(now, {}, rollup), reference(made, now)
        for rule in rules:
            try:
                aggregate = parse_compute(rule, "$")
            except InvalidRule:  # a window from after its end: refused, nothing to compare
                continue
            assert same(facts.aggregate(aggregate), truth.aggregate(aggregate)), rule
            moment = now - timedelta(days=rule.get("within", {}).get("days", 3))
            assert facts.first_event_from(aggregate, moment) == truth.first_event_from(
                aggregate, moment
            )
        assert facts.profile("eventCount") == len(made)
        assert facts.profile("firstSeen") == truth.profile("firstSeen")
        assert facts.profile("lastSeen") == truth.profile("lastSeen")
        assert facts.profile("sources") == sorted({e.source for e in made})


@settings(max_examples=100, deadline=None)
@given(made=events())
def test_traits_survive_as_in_a_profile(made: list[StoredEvent]) -> None:
    config = TraitsConfig(source_priority={"city": ["tmall"]})
    expected = {t.name: t.value for t in survive(made, config)}
    rollup = Rollup()
    rollup.add(reversed(made))
    restored = Rollup.from_head(rollup.head_json())
    assert rollup.surviving_traits(config.source_priority) == expected
    assert restored.surviving_traits(config.source_priority) == expected


def test_a_month_cut_by_one_window_is_not_reused_whole_by_another() -> None:
    made = [
        StoredEvent(n, f"e{n}", "web", stamp, stamp, [("cookie_id", "c")], {}, name="order_paid")
        for n, stamp in enumerate([NOW - timedelta(days=62), NOW - timedelta(days=55)])  # one July
    ]
    facts, truth = RollupFacts(NOW, {}, rollup_of(made)), reference(made, NOW)
    for rule in (
        {"aggregate": "count", "within": {"days": 60}},  # takes the later one of that month
        {"aggregate": "count", "within": {"days": 100}},  # takes both
        {"aggregate": "count"},
    ):
        aggregate = parse_compute(rule, "$")
        assert facts.aggregate(aggregate) == truth.aggregate(aggregate), rule


@settings(max_examples=300, deadline=None)
@given(
    numbers=st.lists(
        st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.floats(min_value=-1e300, max_value=1e300),
        ),
        max_size=12,
    ),
    order=st.randoms(use_true_random=False),
)
def test_sums_are_exact_and_do_not_depend_on_order(numbers: list[Any], order: Any) -> None:
    floats = any(isinstance(n, float) for n in numbers)
    exact = sum((Fraction(n) for n in numbers), Fraction())
    shuffled = list(numbers)
    order.shuffle(shuffled)
    total = sum(scaled(n) for n in shuffled)
    assert exact_sum(total, floats) == (float(exact) if floats else int(exact))
    if numbers:
        assert exact_mean(total, len(numbers)) == float(exact / len(numbers))


def test_distinct_values_tell_numbers_booleans_and_texts_apart() -> None:
    keys = {value_key(v) for v in [1, 1.0, True, "1", [1], {"a": 1}, {"a": 1.0}, False, 0]}
    assert len(keys) == 8  # 1 and 1.0 are one value; true, "1", 0 and false are not it


@settings(max_examples=200, deadline=None)
@given(
    made=events(),
    parts=st.lists(st.sets(st.integers(min_value=0, max_value=40)), min_size=1, max_size=3),
    rules=st.lists(aggregates(), min_size=1, max_size=4),
)
def test_rollups_united_answer_as_their_events_together(
    made: list[StoredEvent], parts: list[set[int]], rules: list[dict[str, Any]]
) -> None:
    """A merge unites the customers' rollups; an event two of them held counts once."""
    first, *others = [rollup_of(e for e in made if e.seq in part) for part in parts]
    united = first.united(others)
    together = [e for e in made if any(e.seq in part for part in parts)]
    whole = rollup_of(together)
    assert united.span == whole.span
    assert united.traits == whole.traits
    assert {k: b.events for k, b in united.buckets.items()} == {
        k: b.events for k, b in whole.buckets.items()
    }
    facts, truth = RollupFacts(NOW, {}, united), reference(together, NOW)
    for rule in rules:
        with contextlib.suppress(InvalidRule):
            aggregate = parse_compute(rule, "$")
            assert same(facts.aggregate(aggregate), truth.aggregate(aggregate)), rule


def test_only_a_merge_of_whole_customers_unites_their_rollups() -> None:
    """A split, a removal or an identifier that had no customer: rollups made from events.

    Each customer is judged alone: a split of D beside the merge of B into A
    leaves A's rollup united.
    """
    at = datetime(2026, 1, 1, tzinfo=UTC)
    a1, b1, b2, new, loose, d1, d2 = (("phone", str(n)) for n in range(7))
    before = {a1: "A", b1: "B", b2: "B", loose: None, d1: "D", d2: "D"}

    def merged(assigned: dict[Any, str | None], removed: frozenset[Any] = frozenset()) -> Any:
        changes = ChangeSet(assignments=assigned)
        changes.customer_updates.append(CustomerRecord("B", 2, at, merged_into="A"))
        changes.customer_updates.append(CustomerRecord("F", 6, at, merged_into="E"))

        def owner(key: Any) -> str | None:
            return None if key in removed else assigned.get(key, before.get(key))

        moved = [k for k in [*assigned, *removed] if before.get(k) not in (None, owner(k))]
        return _merges(moved, before, owner, changes, {new})

    assert merged({b1: "A", b2: "A", new: "A"}) == {"A": {"B"}}
    assert merged({b1: "A"}, removed=frozenset({b2})) == {}
    assert merged({b1: "A", b2: "C"}) == {}
    assert merged({b1: "A", b2: "A", loose: "A"}) == {}
    assert merged({b1: "A", b2: "A", d2: "E"}) == {"A": {"B"}}
    assert merged({b1: "A", b2: "A"}, removed=frozenset({d2})) == {"A": {"B"}}
    assert merged({b1: "A", b2: "A", a1: "C"}) == {}
    assert merged({b1: "A", b2: "A", d2: "A"}) == {}
