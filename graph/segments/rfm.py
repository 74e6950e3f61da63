"""RFM scores: recency, frequency and monetary value, each 1-5 by quintile bins.

The bins are cut over every customer who ordered, as pandas
``qcut(values, 5, labels=False, duplicates="drop")`` cuts them: edges at the
quantiles 0, 0.2, ..., 1 interpolated linearly, each bin closed on the right
and the first closed on the left too. Values that tie on an edge (most
customers ordered once) leave fewer distinct edges, hence fewer bins; the
model says so, and the scores of its bins are spread over 1-5 so that the
best bin still scores 5 and the worst 1. A customer scored later, between two
cuts, falls in the bin its value falls in; a value beyond the outer edges
takes the nearest bin.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from graph.tags.aggregates import EventFact, aggregate_events
from graph.tags.conditions import Aggregate
from graph.tags.parsing import parse_compute
from graph.tags.rollups import Rollup, RollupFacts

SCORES = 5


class InvalidRfmConfig(ValueError):
    """An ``[rfm]`` setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Bins:
    """Edges of the bins cut over one measure's values, lowest first."""

    edges: tuple[float, ...]
    asked: int = SCORES

    @classmethod
    def cut(cls, values: Sequence[float], bins: int = SCORES) -> Bins:
        if not values:
            raise ValueError("bins are cut over at least one value")
        steps = np.linspace(0, 1, bins + 1)
        # Where a step is not exact in binary (0.6), the next float up: a value on
        # an edge lands in the same bin whatever the rounding, as pandas has it.
        np.putmask(steps, bins * steps != np.arange(bins + 1), np.nextafter(steps, 1))
        edges = np.quantile(np.asarray(values, dtype=float), steps)
        return cls(tuple(float(e) for e in np.unique(edges)), bins)

    @property
    def count(self) -> int:
        """How many bins there are: fewer than asked when values tie on edges."""
        return max(len(self.edges) - 1, 1)

    @property
    def tied(self) -> bool:
        return self.count < self.asked

    def bin_of(self, value: float) -> int:
        """The bin (0 is the lowest) that holds ``value``."""
        # The first edge at or above the value closes its bin on the right.
        right = bisect.bisect_left(self.edges, value)
        return min(max(right - 1, 0), self.count - 1)

    def score(self, value: float, higher_is_better: bool = True) -> int:
        """1 (worst) to 5 (best); one bin only (every value alike) says nothing: 3."""
        if self.count == 1:
            return (SCORES + 1) // 2
        spread = 1 + round(self.bin_of(value) * (SCORES - 1) / (self.count - 1))
        return spread if higher_is_better else SCORES + 1 - spread


@dataclass(frozen=True)
class SegmentRule:
    """A named segment: the scores each of R, F and M must lie within (inclusive)."""

    name: str
    r: tuple[int, int] = (1, SCORES)
    f: tuple[int, int] = (1, SCORES)
    m: tuple[int, int] = (1, SCORES)

    def holds(self, r: int, f: int, m: int) -> bool:
        return all(low <= s <= high for s, (low, high) in ((r, self.r), (f, self.f), (m, self.m)))


def segment_of(rules: Sequence[SegmentRule], r: int, f: int, m: int) -> str | None:
    """The first rule's name that these scores meet (None: no rule does)."""
    return next((rule.name for rule in rules if rule.holds(r, f, m)), None)


def parse_segments(raw: Any, path: str = "rfm.segments") -> list[SegmentRule]:
    """Segment rules from config: a list of {name, r, f, m}, each score a [low, high] range."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRfmConfig(f"{path}: a non-empty list of segments is needed")
    rules: list[SegmentRule] = []
    names: set[str] = set()
    for n, item in enumerate(raw):
        where = f"{path}[{n}]"
        if not isinstance(item, Mapping):
            raise InvalidRfmConfig(f"{where}: a table with a name and score ranges is needed")
        unknown = set(item) - {"name", "r", "f", "m"}
        if unknown:
            raise InvalidRfmConfig(f"{where}: unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRfmConfig(f"{where}.name: a non-empty name is needed")
        if name in names:
            raise InvalidRfmConfig(f"{where}.name: {name!r} is named twice")
        names.add(name)
        ranges = {s: _score_range(item.get(s), f"{where}.{s}") for s in ("r", "f", "m")}
        rules.append(SegmentRule(name, ranges["r"], ranges["f"], ranges["m"]))
    return rules


def _score_range(raw: Any, path: str) -> tuple[int, int]:
    if raw is None:
        return (1, SCORES)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw, raw]
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw)
        or not 1 <= raw[0] <= raw[1] <= SCORES
    ):
        raise InvalidRfmConfig(f"{path}: a score 1-{SCORES} or a range [low, high] is needed")
    return (raw[0], raw[1])


@dataclass(frozen=True)
class RfmSettings:
    """Which event is an order, which of its properties the amount, the window F and M cover."""

    order_event: str = "order_paid"
    amount_property: str = "amount"
    window_days: int = 365

    @functools.cached_property
    def frequency(self) -> Aggregate:
        """Orders within the window, as a tag's aggregate counts them."""
        return parse_compute(
            {"aggregate": "count", "event": self.order_event, "within": self._window},
            "rfm.frequency",
        )

    @functools.cached_property
    def monetary(self) -> Aggregate:
        """Their amounts summed, as a tag's aggregate sums them (exactly, in any order)."""
        return parse_compute(
            {
                "aggregate": "sum",
                "event": self.order_event,
                "property": self.amount_property,
                "within": self._window,
            },
            "rfm.monetary",
        )

    @property
    def _window(self) -> dict[str, Any]:
        # Up to the moment scored: an order stamped later (a clock ahead) counts for nothing yet.
        return {"from": {"daysAgo": self.window_days}, "to": {"daysAgo": 0}}


@dataclass(frozen=True)
class Measures:
    """One customer's raw R, F and M."""

    recency_days: int  # whole days since the last order
    frequency: int
    monetary: float

    @classmethod
    def of_events(
        cls, events: Iterable[EventFact], now: datetime, settings: RfmSettings
    ) -> Measures | None:
        """From the customer's events themselves (None: never ordered up to ``now``)."""
        events = list(events)
        name = settings.order_event
        stamps = (e.timestamp for e in events if e.name == name and e.timestamp <= now)
        last = max(stamps, default=None)
        if last is None:
            return None
        return cls(
            (now - last) // timedelta(days=1),
            aggregate_events(settings.frequency, events, now),
            aggregate_events(settings.monetary, events, now),
        )

    @classmethod
    def of_rollup(cls, rollup: Rollup, now: datetime, settings: RfmSettings) -> Measures | None:
        """The same from the customer's rollup, as its tags are decided: no event is read."""
        last = rollup.last_at(settings.order_event, now)
        if last is None:
            return None
        facts = RollupFacts(now, {}, rollup)
        return cls(
            (now - last) // timedelta(days=1),
            facts.aggregate(settings.frequency),
            facts.aggregate(settings.monetary),
        )


@dataclass(frozen=True)
class RfmScore:
    r: int
    f: int
    m: int
    segment: str | None


@dataclass(frozen=True)
class RfmModel:
    """The bins of each measure, cut over every customer who ordered, at one moment."""

    computed_at: datetime
    customers: int
    recency: Bins
    frequency: Bins
    monetary: Bins

    @classmethod
    def cut(cls, measures: Iterable[Measures], now: datetime) -> RfmModel | None:
        """Bins over these customers' measures; None when nobody ordered."""
        measures = list(measures)
        if not measures:
            return None
        return cls(
            now,
            len(measures),
            Bins.cut([m.recency_days for m in measures]),
            Bins.cut([m.frequency for m in measures]),
            Bins.cut([m.monetary for m in measures]),
        )

    @property
    def warnings(self) -> list[str]:
        """A measure whose values tied on edges, so it has fewer bins than scores."""
        return [
            f"{name}: values tie, {bins.count} bins instead of {bins.asked}"
            for name, bins in (
                ("recency", self.recency),
                ("frequency", self.frequency),
                ("monetary", self.monetary),
            )
            if bins.tied
        ]

    def score(self, measures: Measures, rules: Sequence[SegmentRule] = ()) -> RfmScore:
        """This customer's scores against these bins (fewer days since an order is better)."""
        r = self.recency.score(measures.recency_days, higher_is_better=False)
        f = self.frequency.score(measures.frequency)
        m = self.monetary.score(measures.monetary)
        return RfmScore(r, f, m, segment_of(rules, r, f, m))
