"""RFM bins are the bins pandas ``qcut`` cuts; scores and segment rules follow them."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.models import StoredEvent
from graph.segments.rfm import (
    Bins,
    InvalidRfmConfig,
    Measures,
    RfmModel,
    RfmSettings,
    SegmentRule,
    parse_segments,
    segment_of,
)
from graph.tags.aggregates import EventFact
from graph.tags.rollups import as_facts, rollup_of
from tests.test_rollups import NOW as ROLLUP_NOW
from tests.test_rollups import events

# Orders per customer tie heavily (most ordered once); amounts and days less so.
measures = st.one_of(
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=300),
    st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=300),
    st.lists(
        st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda v: round(v, 2)),
        min_size=1,
        max_size=300,
    ),
)


def pandas_bins(values: list[float]) -> tuple[list[float], list[float]]:
    """What pandas gives: each value's bin (NaN where it gives none) and the edges."""
    codes, edges = pd.qcut(values, 5, labels=False, retbins=True, duplicates="drop")
    return [float(c) for c in codes], [float(e) for e in edges]


@settings(max_examples=300, deadline=None)
@given(measures)
def test_bins_are_the_bins_pandas_qcut_gives(values: list[float]) -> None:
    bins = Bins.cut(values)
    codes, edges = pandas_bins(values)
    assert list(bins.edges) == edges
    assert bins.tied == (len(edges) < 6)
    for value, code in zip(values, codes, strict=True):
        if math.isnan(code):  # pandas bins nothing when every value is alike
            assert bins.count == 1
        else:
            assert bins.bin_of(value) == code


def test_ties_give_fewer_bins_and_scores_keep_their_ends() -> None:
    # 60% ordered once, 20% twice, 20% three to five times.
    orders = [1] * 60 + [2] * 20 + [3, 4, 5, 5] * 5
    bins = Bins.cut(orders)
    assert bins.tied and bins.count == 3
    assert [bins.score(v) for v in (1, 2, 3, 5)] == [1, 3, 5, 5]
    # Fewer days since the last order is better: recency scores the other way round.
    days = Bins.cut(list(range(100)))
    assert not days.tied
    assert [days.score(d, higher_is_better=False) for d in (0, 30, 50, 70, 99)] == [5, 4, 3, 2, 1]


def test_a_value_scored_between_cuts_falls_in_its_bin_or_the_nearest() -> None:
    bins = Bins.cut([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    assert bins.edges == pytest.approx((10.0, 20.0, 30.0, 40.0, 50.0, 60.0))
    assert [bins.bin_of(v) for v in (10, 20, 20.5, 60, 0, 1e9)] == [0, 0, 1, 4, 0, 4]
    assert Bins.cut([7, 7, 7]).score(7) == 3  # one bin: says nothing either way
    with pytest.raises(ValueError):
        Bins.cut([])


def test_scores_match_bins_pandas_gives_over_a_generated_population() -> None:
    amounts = np.random.default_rng(7).lognormal(5, 1, 10_000).round(2).tolist()
    codes, _ = pandas_bins(amounts)
    bins = Bins.cut(amounts)
    assert [bins.score(a) for a in amounts] == [int(c) + 1 for c in codes]


RULES = parse_segments(
    [
        {"name": "Champions", "r": [4, 5], "f": [4, 5], "m": [4, 5]},
        {"name": "Loyal", "r": [3, 5], "f": [4, 5]},
        {"name": "New", "r": [4, 5], "f": 1},
        {"name": "At risk", "r": [1, 2], "f": [3, 5]},
        {"name": "Lost", "r": 1},
        {"name": "Others"},
    ]
)


def test_the_first_segment_rule_that_holds_names_the_customer() -> None:
    assert segment_of(RULES, 5, 5, 5) == "Champions"
    assert segment_of(RULES, 5, 5, 1) == "Loyal"
    assert segment_of(RULES, 5, 1, 3) == "New"
    assert segment_of(RULES, 2, 4, 4) == "At risk"
    assert segment_of(RULES, 1, 1, 1) == "Lost"
    assert segment_of(RULES, 3, 2, 2) == "Others"
    assert segment_of([SegmentRule("Top", r=(5, 5))], 4, 5, 5) is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ([], "rfm.segments"),
        ([{"r": [4, 5]}], "rfm.segments[0].name"),
        ([{"name": "A"}, {"name": "A"}], "rfm.segments[1].name"),
        ([{"name": "A", "r": [5, 4]}], "rfm.segments[0].r"),
        ([{"name": "A", "f": [0, 3]}], "rfm.segments[0].f"),
        ([{"name": "A", "m": True}], "rfm.segments[0].m"),
        ([{"name": "A", "recency": 5}], "rfm.segments[0]: unknown key 'recency'"),
        (["Champions"], "rfm.segments[0]"),
    ],
)
def test_a_bad_segment_rule_is_refused_naming_it(raw: object, named: str) -> None:
    with pytest.raises(InvalidRfmConfig, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_segments(raw)


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SETTINGS = RfmSettings(order_event="order_paid", amount_property="amount", window_days=90)


def fact(days_ago: float, name: str | None, amount: object = None, seq: int = 0) -> EventFact:
    props = {} if amount is None else {"amount": amount}
    return EventFact(NOW - timedelta(days=days_ago), seq, name, "web", props)


def test_measures_count_orders_and_amounts_within_the_window() -> None:
    events = [
        fact(400, "order_paid", 1000),  # before the window: recency only if it were the last
        fact(80, "order_paid", 120.5),
        fact(10.5, "order_paid", 79.5),
        fact(3, "page_view"),
        fact(2, "order_paid", "n/a"),  # an order with no usable amount still counts
        fact(-1, "order_paid", 999),  # after now: not yet
    ]
    assert Measures.of_events(events, NOW, SETTINGS) == Measures(2, 3, 200.0)
    assert Measures.of_events([fact(400, "order_paid", 5)], NOW, SETTINGS) == Measures(400, 0, 0)
    assert Measures.of_events([fact(1, "page_view")], NOW, SETTINGS) is None


def test_a_model_scores_a_customer_against_bins_over_everyone_who_ordered() -> None:
    pick = random.Random(5)
    population = [
        Measures(pick.randrange(365), pick.choice([1, 1, 1, 1, 2, 2, 3, 5, 8]), pick.random() * 900)
        for _ in range(2000)
    ]
    model = RfmModel.cut(population, NOW)
    assert model is not None and model.customers == 2000
    assert model.recency == Bins.cut([p.recency_days for p in population])
    assert model.warnings == ["frequency: values tie, 3 bins instead of 5"]
    best = model.score(Measures(0, 8, 900.0), RULES)
    assert (best.r, best.f, best.m, best.segment) == (5, 5, 5, "Champions")
    lapsed = model.score(Measures(364, 1, 1.0), RULES)
    assert (lapsed.r, lapsed.f, lapsed.m, lapsed.segment) == (1, 1, 1, "Lost")
    # Scored against the bins of the whole population, as pandas bins them.
    codes, _ = pandas_bins([p.monetary for p in population])
    assert [model.score(p).m for p in population] == [int(c) + 1 for c in codes]
    assert RfmModel.cut([], NOW) is None


@settings(max_examples=200, deadline=None)
@given(made=events(), window=st.sampled_from([1, 3, 30, 365]))
def test_measures_from_a_rollup_are_those_from_the_events(
    made: list[StoredEvent], window: int
) -> None:
    """The rollup a customer's tags are decided from gives the same R, F and M as its events."""
    chosen = RfmSettings(order_event="order_paid", amount_property="amount", window_days=window)
    assert Measures.of_rollup(rollup_of(made), ROLLUP_NOW, chosen) == Measures.of_events(
        as_facts(made), ROLLUP_NOW, chosen
    )
