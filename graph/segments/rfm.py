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
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from graph.errors import InvalidRule
from graph.tags.aggregates import EventFact, aggregate_events, is_number
from graph.tags.conditions import Aggregate
from graph.tags.facts import MISSING, Facts
from graph.tags.moments import SinceLast, parse_instant
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

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "r": list(self.r), "f": list(self.f), "m": list(self.m)}


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

    @functools.cached_property
    def ever(self) -> Aggregate:
        """Orders at any time: whichever arrives, late or not, may move the last order."""
        return parse_compute({"aggregate": "count", "event": self.order_event}, "rfm.orders")

    def as_json(self) -> dict[str, Any]:
        return {
            "orderEvent": self.order_event,
            "amountProperty": self.amount_property,
            "windowDays": self.window_days,
        }

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
        return cls.of_facts(RollupFacts(now, {}, rollup), settings)

    @classmethod
    def of_facts(cls, facts: Facts, settings: RfmSettings) -> Measures | None:
        last = facts.last_event_at(settings.order_event)
        if last is None:
            return None
        return cls(
            (facts.now - last) // timedelta(days=1),
            facts.aggregate(settings.frequency),
            facts.aggregate(settings.monetary),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "recencyDays": self.recency_days,
            "frequency": self.frequency,
            "monetary": self.monetary,
        }


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

    def as_json(self) -> dict[str, Any]:
        return {
            "computedAt": self.computed_at.isoformat(),
            "customers": self.customers,
            "edges": {
                "recency": list(self.recency.edges),
                "frequency": list(self.frequency.edges),
                "monetary": list(self.monetary.edges),
            },
        }

    @classmethod
    def from_json(cls, raw: Any, path: str) -> RfmModel:
        """The model as ``as_json`` wrote it; ``InvalidRule`` naming the bad part."""
        if not isinstance(raw, Mapping) or set(raw) != {"computedAt", "customers", "edges"}:
            raise InvalidRule("a model has computedAt, customers and edges", path)
        at = raw["computedAt"]
        computed_at = parse_instant(at) if isinstance(at, str) else None
        if computed_at is None:
            raise InvalidRule("computedAt must be an ISO 8601 time", f"{path}.computedAt")
        customers = raw["customers"]
        if not isinstance(customers, int) or isinstance(customers, bool) or customers < 1:
            raise InvalidRule("customers must be a whole number above 0", f"{path}.customers")
        edges = raw["edges"]
        if not isinstance(edges, Mapping) or set(edges) != set(MEASURES):
            raise InvalidRule(f"edges has {', '.join(MEASURES)}", f"{path}.edges")
        bins = [_edges(edges[name], f"{path}.edges.{name}") for name in MEASURES]
        return cls(computed_at, customers, *bins)


MEASURES = ("recency", "frequency", "monetary")


def _edges(raw: Any, path: str) -> Bins:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(is_number(e) and math.isfinite(e) for e in raw)
        or any(a >= b for a, b in itertools.pairwise(raw))
    ):
        raise InvalidRule("edges are finite numbers, strictly increasing", path)
    return Bins(tuple(float(e) for e in raw))


SCORED = {"r": "recency", "f": "frequency", "m": "monetary", "segment": "segment"}


@dataclass(frozen=True)
class RfmRule:
    """What an RFM tag holds: one score, or the segment name, of a customer against a model.

    The model's bins are part of the rule, so a tag decided now and one
    decided after a restart or in another process agree, and a recompute is
    a new version of the definition, built like any other change of rule.
    """

    score: str  # a key of SCORED
    settings: RfmSettings
    model: RfmModel
    segments: tuple[SegmentRule, ...] = ()

    def aggregates(self) -> list[Aggregate]:
        return [self.settings.frequency, self.settings.monetary, self.settings.ever]

    def recency_clock(self) -> SinceLast:
        """When whole days since the last order pass a recency edge: the score may move."""
        days = sorted({math.floor(e) + 1 for e in self.model.recency.edges if e >= 0})
        return SinceLast(self.settings.order_event, tuple(days))

    def value(self, facts: Facts) -> Any:
        measures = Measures.of_facts(facts, self.settings)
        if measures is None:
            return MISSING
        return self._pick(self.model.score(measures, self.segments))

    def _pick(self, scored: RfmScore) -> Any:
        if self.score == "segment":
            return MISSING if scored.segment is None else scored.segment
        return {"r": scored.r, "f": scored.f, "m": scored.m}[self.score]

    def explain(self, facts: Facts) -> dict[str, Any]:
        """The measures seen, each score and the segment, against which model."""
        measures = Measures.of_facts(facts, self.settings)
        if measures is None:
            return {"rfm": self.score, "ordered": False}
        scored = self.model.score(measures, self.segments)
        found = {
            "rfm": self.score,
            **measures.as_json(),
            "scores": {"r": scored.r, "f": scored.f, "m": scored.m},
            "modelComputedAt": self.model.computed_at.isoformat(),
        }
        if self.score == "segment":
            found["segment"] = scored.segment
        return found

    def as_json(self) -> dict[str, Any]:
        given: dict[str, Any] = {
            "score": self.score,
            **self.settings.as_json(),
            "model": self.model.as_json(),
        }
        if self.score == "segment":
            given["segments"] = [s.as_json() for s in self.segments]
        return given

    @classmethod
    def parse(cls, raw: Any, path: str = "$.rfm") -> RfmRule:
        """A rule as ``as_json`` wrote it, or ``InvalidRule`` naming the bad part."""
        if not isinstance(raw, Mapping):
            raise InvalidRule("rfm is an object", path)
        score = raw.get("score")
        if score not in SCORED:
            raise InvalidRule(f"score is one of {', '.join(SCORED)}", f"{path}.score")
        allowed = {"score", "orderEvent", "amountProperty", "windowDays", "model"}
        if score == "segment":
            allowed.add("segments")
        if unknown := sorted(set(raw) - allowed):
            raise InvalidRule(f"unknown key {unknown[0]!r}", f"{path}.{unknown[0]}")
        for key in ("orderEvent", "amountProperty"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise InvalidRule(f"{key} must be a non-empty string", f"{path}.{key}")
        window = raw.get("windowDays")
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise InvalidRule("windowDays must be a whole number above 0", f"{path}.windowDays")
        settings = RfmSettings(raw["orderEvent"], raw["amountProperty"], window)
        model = RfmModel.from_json(raw.get("model"), f"{path}.model")
        segments: tuple[SegmentRule, ...] = ()
        if score == "segment":
            try:
                segments = tuple(parse_segments(raw.get("segments"), f"{path}.segments"))
            except InvalidRfmConfig as exc:
                raise InvalidRule(str(exc), f"{path}.segments") from exc
        return cls(score, settings, model, segments)
