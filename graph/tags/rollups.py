"""Per-customer rollups: a customer's events summed up per day, event name and source.

A tag is evaluated whenever one of its customer's events arrives, so its
aggregates must not read every event again: a customer with ten thousand
orders would pay for all of them on the next one. A rollup keeps, for each
(day, name, source), the bucket's events in compact form and, once asked for,
a property's summary over them (count, exact sum, minimum and maximum, first
and last values, how often each value was seen). An aggregate over a window
takes whole months it covers as parts summed once and kept, whole days by
their buckets, and looks at single events only on the one or two days the
window's ends cut through, so it is exact at any moment, not rounded to days.

Sums are exact (whole numbers of 2**-1074) and rounded once at the end, so they do not
depend on the order buckets are added in: a rollup built event by event and
one built at once from the events give the same number, the one the events
themselves give (``graph.tags.aggregates``). Summaries merge, but a merge of
customers sharing an event would count it twice, so merges and splits
rebuild the rollup from the customer's events instead.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from graph import jsontext
from graph.tags.aggregates import EventFact, exact_mean, exact_sum, scaled, value_key
from graph.tags.conditions import Aggregate
from graph.tags.facts import MISSING

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MICROS = 86_400_000_000

BucketKey = tuple[int, str | None, str]  # (day since 1970-01-01 UTC, event name, source)
Stamp = tuple[int, int]  # (microseconds since 1970 UTC, event seq): the order of events


def micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment_of(stamp_micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=stamp_micros)


@dataclass(slots=True)
class PropertySummary:
    """One property over a set of events: enough to answer every aggregate of it."""

    present: int = 0  # events where it is not null
    numbers: int = 0
    total: int = 0  # exact, in steps of 2**-1074 (``graph.tags.aggregates.scaled``)
    floats: bool = False  # a float among the numbers: the sum is a float
    low: Any = None
    high: Any = None
    first: tuple[Stamp, Any] | None = None
    last: tuple[Stamp, Any] | None = None
    # value key -> (times seen, last seen at, the value)
    seen: dict[Any, tuple[int, Stamp, Any]] = field(default_factory=dict)

    def add(self, stamp: Stamp, value: Any) -> None:
        self.present += 1
        kind = type(value)
        if kind is float or kind is int:
            self.numbers += 1
            self.total += scaled(value)
            self.floats = self.floats or kind is float
            self.low = value if self.low is None or value < self.low else self.low
            self.high = value if self.high is None or value > self.high else self.high
        if self.first is None or stamp < self.first[0]:
            self.first = (stamp, value)
        if self.last is None or stamp > self.last[0]:
            self.last = (stamp, value)
        key = value_key(value)
        held = self.seen.get(key)
        if held is None:
            self.seen[key] = (1, stamp, value)
        else:
            latest = (stamp, value) if stamp > held[1] else (held[1], held[2])
            self.seen[key] = (held[0] + 1, *latest)

    def merge(self, other: PropertySummary) -> None:
        self.present += other.present
        self.numbers += other.numbers
        self.total += other.total
        self.floats = self.floats or other.floats
        for value in (other.low, other.high):
            if value is not None:
                self.low = value if self.low is None or value < self.low else self.low
                self.high = value if self.high is None or value > self.high else self.high
        if other.first is not None and (self.first is None or other.first[0] < self.first[0]):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last[0] > self.last[0]):
            self.last = other.last
        for key, (times, stamp, value) in other.seen.items():
            held = self.seen.get(key)
            if held is None:
                self.seen[key] = (times, stamp, value)
            else:
                latest = (stamp, value) if stamp > held[1] else (held[1], held[2])
                self.seen[key] = (held[0] + times, *latest)

    def value(self, function: str) -> Any:
        """``function`` of the property, as ``graph.tags.aggregates.summarise`` gives it."""
        if function == "count":
            return self.present
        if function == "distinctCount":
            return len(self.seen)
        if function == "first":
            return None if self.first is None else self.first[1]
        if function == "last":
            return None if self.last is None else self.last[1]
        if function == "mostFrequent":
            if not self.seen:
                return None
            return max(self.seen.values(), key=lambda s: (s[0], s[1]))[2]
        if function == "sum":
            return exact_sum(self.total, self.floats)
        if not self.numbers:
            return None
        if function == "avg":
            return exact_mean(self.total, self.numbers)
        return self.low if function == "min" else self.high


# One event in a bucket: its stamp and properties (name and source are the bucket's).
Compact = tuple[int, int, dict[str, Any] | None]

# A bucket of at most this many events adds them to a sum one by one: cheaper than
# making and keeping a summary of them, which is what most buckets hold.
_SMALL = 4


class Bucket:
    """One day's events of one name and source, and a property's summary once asked for.

    Only the events are stored (most buckets hold one or two, which a summary
    would repeat several times over); a count is how many there are, and a
    property's summary is made from them when a window first takes the whole
    day of a larger bucket. The events stay stored text until asked for, so
    reading a customer's rollup decodes only what its tags look at.
    """

    __slots__ = ("_events", "_events_text", "_props", "changed")

    def __init__(self, events: list[Compact] | None = None, events_text: str | None = None) -> None:
        self._events, self._events_text = events, events_text
        self._props: dict[str, PropertySummary] | None = None
        self.changed = False

    @classmethod
    def stored(cls, events_text: str) -> Bucket:
        return cls(events_text=events_text)

    @property
    def events(self) -> list[Compact]:
        """The events in time order."""
        if self._events is None:
            assert self._events_text is not None
            self._events = [(t, s, p) for t, s, p in json.loads(self._events_text)]
        return self._events

    def add_to(self, into: PropertySummary, prop: str) -> None:
        """Every value of ``prop`` in this bucket, into ``into``."""
        events = self.events
        props = self._props
        if len(events) <= _SMALL and (props is None or prop not in props):
            for at, seq, properties in events:
                if properties and (value := properties.get(prop)) is not None:
                    into.add((at, seq), value)
            return
        if props is None:
            props = self._props = {}
        held = props.get(prop)
        if held is None:
            held = props[prop] = PropertySummary()
            for at, seq, properties in events:
                if properties and (value := properties.get(prop)) is not None:
                    held.add((at, seq), value)
        into.merge(held)

    def copy(self) -> Bucket:
        """A bucket to add to, leaving this one as readers see it."""
        if self._events is None:
            return Bucket(events_text=self._events_text)
        return Bucket(events=list(self._events))

    def add(self, at: int, seq: int, properties: dict[str, Any] | None) -> None:
        events = self.events
        events.append((at, seq, properties))
        if len(events) > 1 and (at, seq) < events[-2][:2]:
            events.sort(key=lambda e: (e[0], e[1]))
        self._props = None
        self.changed = True

    def united(self, other: Bucket) -> Bucket:
        """The events of both, one held by both counted once (by its sequence number)."""
        mine = self.events
        seen = {seq for _, seq, _ in mine}
        extra = [e for e in other.events if e[1] not in seen]
        if not extra:
            return self
        made = Bucket(sorted([*mine, *extra], key=lambda e: (e[0], e[1])))
        made.changed = True
        return made

    def text(self) -> str:
        """The events as stored."""
        if self._events is None:
            assert self._events_text is not None
            return self._events_text
        return jsontext.dumps(self._events)


def bucket_key_text(key: BucketKey) -> str:
    return json.dumps(list(key), ensure_ascii=False)


def bucket_key(text: str) -> BucketKey:
    day, name, source = json.loads(text)
    return (day, name, source)


MonthPart = tuple[int, PropertySummary | None]  # a month's count and one property's summary


@dataclass
class Rollup:
    """One customer's events as buckets, and each trait's latest value per source.

    A month wholly inside a window is summed once and kept (``month_part``),
    so a window over a year adds a dozen months and the days at its ends,
    not every day. A rollup is not changed once made: ``with_events`` gives
    a new one sharing what did not change, so a store may keep rollups in
    memory and readers may use them while a write makes the next.
    """

    buckets: dict[BucketKey, Bucket] = field(default_factory=dict)
    # trait -> source -> (stamp of its latest observation, value)
    traits: dict[str, dict[str, tuple[Stamp, Any]]] = field(default_factory=dict)
    # The earliest and latest event (microseconds) and how many: first and last
    # seen and the event count without a look at any bucket.
    span: tuple[int | None, int | None, int] = (None, None, 0)
    head_changed: bool = False  # traits or span: the customer's one row of them
    _months: dict[tuple[Any, ...], MonthPart] = field(default_factory=dict, repr=False)

    def with_events(self, events: Sequence[Any]) -> Rollup:
        """This rollup with events of this customer it has not seen."""
        if not events:
            return self
        touched = {(micros(e.timestamp) // _DAY_MICROS, e.name, e.source) for e in events}
        buckets = dict(self.buckets)
        for key in touched & buckets.keys():
            buckets[key] = buckets[key].copy()
        months = {month_of(day) for day, _, _ in touched}
        made = Rollup(
            buckets,
            {name: dict(by_source) for name, by_source in self.traits.items()},
            self.span,
            _months={k: v for k, v in self._months.items() if k[2] not in months},
        )
        made.add(events)
        return made

    def united(self, others: Sequence[Rollup]) -> Rollup:
        """The rollup of this one's events and theirs, an event in several counted once.

        What a merge makes of the customers it unites, without reading their
        events again. Only a bucket both hold is looked into: an event two
        customers both held is in the same bucket of each.
        """
        buckets = dict(self.buckets)
        traits = {name: dict(by_source) for name, by_source in self.traits.items()}
        earliest, latest, count = self.span
        for other in others:
            low, high, more = other.span
            if low is not None:
                earliest = low if earliest is None else min(earliest, low)
            if high is not None:
                latest = high if latest is None else max(latest, high)
            for key, bucket in other.buckets.items():
                held = buckets.get(key)
                if held is None:
                    buckets[key] = bucket
                    continue
                both = held.united(bucket)
                more -= len(bucket.events) - (len(both.events) - len(held.events))
                buckets[key] = both
            count += more
            for name, by_source in other.traits.items():
                mine = traits.setdefault(name, {})
                for source, found in by_source.items():
                    was = mine.get(source)
                    if was is None or found[0] > was[0]:
                        mine[source] = found
        return Rollup(buckets, traits, (earliest, latest, count), head_changed=True)

    def settle(self) -> None:
        """Written: nothing of it is a change to write any more."""
        self.head_changed = False
        for bucket in self.buckets.values():
            bucket.changed = False

    def month_part(
        self,
        selection: tuple[Any, Any],
        month: int,
        days: Sequence[tuple[int, Bucket]],
        prop: str | None,
    ) -> MonthPart:
        """The count of a month's buckets of one selection, and one property's summary."""
        key = (*selection, month, prop)
        found = self._months.get(key)
        if found is None:
            count, merged = 0, None if prop is None else PropertySummary()
            for _, bucket in days:
                count += len(bucket.events)
                if merged is not None:
                    assert prop is not None
                    bucket.add_to(merged, prop)
            found = self._months[key] = (count, merged)
        return found

    def add(self, events: Iterable[Any]) -> None:
        """Events (anything with the ``StoredEvent`` fields) of this customer it has not seen."""
        for e in events:
            at = micros(e.timestamp)
            earliest, latest, count = self.span
            self.span = (
                at if earliest is None else min(earliest, at),
                at if latest is None else max(latest, at),
                count + 1,
            )
            self.head_changed = True
            key = (at // _DAY_MICROS, e.name, e.source)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket([])
            bucket.add(at, e.seq, e.properties or None)
            for name, value in e.traits.items():
                if value is None:
                    continue
                by_source = self.traits.setdefault(name, {})
                held = by_source.get(e.source)
                if held is None or (at, e.seq) > held[0]:
                    by_source[e.source] = ((at, e.seq), value)

    def last_at(self, name: str | None, until: datetime) -> datetime | None:
        """The time of the latest event named ``name`` at or before ``until``."""
        limit = micros(until)
        today = limit // _DAY_MICROS
        days = sorted(
            ((k[0], b) for k, b in self.buckets.items() if k[1] == name and k[0] <= today),
            key=_day,
            reverse=True,
        )
        best: int | None = None
        best_day = 0
        for day, bucket in days:
            if best is not None and day < best_day:
                break  # only another bucket of the same day could be later
            found = max((at for at, _, _ in bucket.events if at <= limit), default=None)
            if found is not None and (best is None or found > best):
                best, best_day = found, day
        return None if best is None else moment_of(best)

    def head_json(self) -> dict[str, Any]:
        """The traits and span, as the customer's one row beside its buckets keeps them."""
        traits = {
            name: {source: [*stamp, value] for source, (stamp, value) in by_source.items()}
            for name, by_source in self.traits.items()
        }
        return {"traits": traits, "span": list(self.span)}

    @classmethod
    def from_head(cls, data: Mapping[str, Any]) -> Rollup:
        traits = {
            name: {source: ((t, s), v) for source, (t, s, v) in by_source.items()}
            for name, by_source in data["traits"].items()
        }
        earliest, latest, count = data["span"]
        return cls(traits=traits, span=(earliest, latest, count))

    def surviving_traits(self, source_priority: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """Each trait's value as a profile shows it: best-ranked source, then the latest."""
        found = {}
        for name, by_source in self.traits.items():
            ranking = list(source_priority.get(name, ()))
            scored = [
                (ranking.index(s) if s in ranking else len(ranking), -at, -seq, value)
                for s, ((at, seq), value) in by_source.items()
            ]
            found[name] = min(scored, key=lambda x: x[:3])[3]
        return found


class Plans:
    """Each aggregate's window in microseconds and days at one moment, for many customers.

    A write decides the tags of hundreds of customers at the same ``now``:
    their windows are worked out once.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._plans: dict[Aggregate, _Plan] = {}

    def of(self, aggregate: Aggregate) -> _Plan:
        found = self._plans.get(aggregate)
        if found is None:
            low, high = (
                (None, None) if aggregate.within is None else aggregate.within.bounds(self.now)
            )
            low_at = None if low is None else micros(low)
            high_at = None if high is None else micros(high)
            found = self._plans[aggregate] = _Plan(
                (aggregate.events, aggregate.source),
                aggregate.property_name,
                aggregate.function,
                low_at,
                high_at,
                None if low_at is None else low_at // _DAY_MICROS,
                None if high_at is None else high_at // _DAY_MICROS,
            )
        return found


class _Plan(NamedTuple):
    selection: tuple[tuple[str, ...] | None, str | None]
    prop: str | None
    function: str
    low_at: int | None
    high_at: int | None
    low_day: int | None
    high_day: int | None


# A month of one selection: (month, its first and last calendar day, its days with events).
_Month = tuple[int, int, int, list[tuple[int, Bucket]]]
_NOT_YET: Any = object()


@dataclass
class RollupFacts:
    """A customer's facts from its rollup: what ``CustomerFacts`` answers, without its events.

    First and last seen are the customer's earliest and latest event, which is
    what its identifiers' first and last seen add up to.
    """

    now: datetime
    traits: Mapping[str, Any]
    rollup: Rollup
    account_links: Sequence[Mapping[str, Any]] = ()
    tags: dict[str, Any] = field(default_factory=dict)
    plans: Plans | None = None  # shared by the customers decided at this ``now``
    _found: dict[Aggregate, Any] = field(default_factory=dict)
    _selections: dict[tuple[Any, Any], list[tuple[int, Bucket]]] = field(default_factory=dict)
    _months: dict[tuple[Any, Any], list[_Month]] = field(default_factory=dict)
    _lasts: dict[str, datetime | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.plans is None or self.plans.now != self.now:
            self.plans = Plans(self.now)

    def trait(self, name: str) -> Any:
        value = self.traits.get(name)
        return MISSING if value is None else value

    def profile(self, name: str) -> Any:
        earliest, latest, count = self.rollup.span
        if name == "firstSeen":
            return MISSING if earliest is None else moment_of(earliest)
        if name == "lastSeen":
            return MISSING if latest is None else moment_of(latest)
        if name == "eventCount":
            return count
        return sorted({source for _, _, source in self.rollup.buckets})

    def tag(self, tag_id: str) -> Any:
        return self.tags.get(tag_id, MISSING)

    def links(self) -> Sequence[Mapping[str, Any]]:
        return self.account_links

    def aggregate(self, aggregate: Aggregate) -> Any:
        found = self._found.get(aggregate, _NOT_YET)
        if found is _NOT_YET:
            assert self.plans is not None
            value = self._computed(self.plans.of(aggregate))
            found = self._found[aggregate] = MISSING if value is None else value
        return found

    def _computed(self, plan: _Plan) -> Any:
        selection, prop, _, low_at, high_at, low_day, high_day = plan
        months = self._months.get(selection)
        if months is None:
            months = self._months[selection] = _by_month(self._selection(selection))
        count, summary = 0, PropertySummary()
        start = 0 if low_day is None else bisect.bisect_left(months, low_day, key=_last_day)
        for month, first, last, days in itertools.islice(months, start, None):
            if high_day is not None and days[0][0] > high_day:
                break
            if (low_day is None or first > low_day) and (high_day is None or last < high_day):
                # The whole month is in the window: summed once, kept with the rollup.
                part_count, part = self.rollup.month_part(selection, month, days, prop)
                count += part_count
                if part is not None:
                    summary.merge(part)
                continue
            for day, bucket in days:
                if high_day is not None and day > high_day:
                    break
                if low_day is not None and day < low_day:
                    continue
                if day in (low_day, high_day):  # the window cuts this day: each event
                    for at, seq, properties in bucket.events:
                        if (low_at is not None and at < low_at) or (
                            high_at is not None and at > high_at
                        ):
                            continue
                        count += 1
                        if prop is not None and properties and properties.get(prop) is not None:
                            summary.add((at, seq), properties[prop])
                    continue
                count += len(bucket.events)
                if prop is not None:
                    bucket.add_to(summary, prop)
        return count if prop is None else summary.value(plan.function)

    def last_event_at(self, name: str) -> datetime | None:
        # Asked by each RFM tag and its clock: the buckets are scanned once.
        if name not in self._lasts:
            self._lasts[name] = self.rollup.last_at(name, self.now)
        return self._lasts[name]

    def first_event_from(self, aggregate: Aggregate, moment: datetime) -> datetime | None:
        """The time of the aggregate's earliest event at or after ``moment``, window aside."""
        at_least = micros(moment)
        first_day = at_least // _DAY_MICROS
        chosen = self._selection((aggregate.events, aggregate.source))
        best: int | None = None
        best_day = 0
        for day, bucket in chosen[bisect.bisect_left(chosen, first_day, key=_day) :]:
            if best is not None and day > best_day:
                break  # days are in order: only a bucket of the same day could be earlier
            if day == first_day:
                found = min((at for at, _, _ in bucket.events if at >= at_least), default=None)
            else:
                found = bucket.events[0][0]
            if found is not None and (best is None or found < best):
                best, best_day = found, day
        return None if best is None else moment_of(best)

    def _selection(self, selection: tuple[Any, Any]) -> list[tuple[int, Bucket]]:
        """The buckets of some event names and a source, in day order."""
        found = self._selections.get(selection)
        if found is None:
            names, source = selection
            found = sorted(
                (
                    (key[0], bucket)
                    for key, bucket in self.rollup.buckets.items()
                    if (names is None or key[1] in names) and (source is None or key[2] == source)
                ),
                key=_day,
            )
            self._selections[selection] = found
        return found


def _by_month(chosen: list[tuple[int, Bucket]]) -> list[_Month]:
    found = []
    for month, grouped in itertools.groupby(chosen, key=_month):
        first, last = month_days(month)  # the calendar's, not just the days with events
        found.append((month, first, last, list(grouped)))
    return found


def _last_day(month: _Month) -> int:
    return month[2]


def _day(item: tuple[int, Bucket]) -> int:
    return item[0]


def _month(item: tuple[int, Bucket]) -> int:
    return month_of(item[0])


@functools.lru_cache(maxsize=4096)
def month_days(month: int) -> tuple[int, int]:
    """The first and last day (since 1970) of a month (from ``month_of``)."""
    year, index = divmod(month, 12)
    first = date(year, index + 1, 1)
    following = date(year + (index == 11), (index + 1) % 12 + 1, 1)
    epoch = _EPOCH.date()
    return (first - epoch).days, (following - epoch).days - 1


@functools.lru_cache(maxsize=4096)
def month_of(day: int) -> int:
    """The month (UTC) of a day since 1970, as months since year 0."""
    found = _EPOCH.date() + timedelta(days=day)
    return found.year * 12 + found.month - 1


def rollup_of(events: Iterable[Any]) -> Rollup:
    """A customer's rollup from its events, as a rebuild makes it."""
    rollup = Rollup()
    rollup.add(sorted(events, key=lambda e: (e.timestamp, e.seq)))
    return rollup


def as_facts(events: Iterable[Any]) -> list[EventFact]:
    return [EventFact(e.timestamp, e.seq, e.name, e.source, e.properties or {}) for e in events]
