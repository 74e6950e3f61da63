"""When time alone could change a customer's tags: the next moment to evaluate them again.

A window (``within``) or a ``daysAgo`` operand is relative to now, so a tag
can change with no event at all: the oldest order leaves "the last 30 days",
a customer first seen 30 days ago stops being new. For each such rule the
moments it could change are known from the customer's facts; the earliest
one after now is when the customer is due. It may be a moment when nothing
changes after all (another leaf decides): evaluating then is cheap, and the
next moment is found anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from graph.tags.conditions import (
    Aggregate,
    ProfileIs,
    Test,
    TraitIs,
    walk,
)
from graph.tags.definitions import TagDefinition
from graph.tags.facts import Facts
from graph.tags.moments import DaysAgo, SinceLast, parse_instant

_INSTANT = timedelta(microseconds=1)  # the smallest step of time stored


def next_change(definitions: Iterable[TagDefinition], facts: Facts) -> datetime | None:
    """The earliest moment after ``facts.now`` at which a tag of this customer could change."""
    return next_tick(clocks([c for d in definitions for c in clocks_of(d)]), facts)


Clock = Aggregate | ProfileIs | TraitIs | SinceLast  # a part of a rule that time alone can move


def clocks_of(definition: TagDefinition) -> list[Clock]:
    """The parts of a definition relative to now: windows with ``daysAgo`` ends, tests of times."""
    found: list[Clock] = []
    for condition in definition.conditions():
        for c in walk(condition):
            if isinstance(c, ProfileIs | TraitIs) and _relative(c.test):
                found.append(c)
    if definition.rfm is not None:
        found.append(definition.rfm.recency_clock())
    for aggregate in definition.aggregates():
        window = aggregate.within
        if window is not None and any(
            isinstance(end, DaysAgo) for end in (window.start, window.end)
        ):
            found.append(aggregate)
    return found


def clocks(found: Iterable[Clock]) -> list[Clock]:
    """Each clock once (rules repeat windows: a lifecycle's cases share them)."""
    return list(dict.fromkeys(found))


def next_tick(found: Iterable[Clock], facts: Facts) -> datetime | None:
    """The earliest moment after ``facts.now`` at which one of these clocks could move a tag."""
    now = facts.now
    moments: list[datetime] = []
    for c in found:
        if isinstance(c, Aggregate):
            moments.extend(_window_moves(c, facts, now))
        elif isinstance(c, SinceLast):
            moments.extend(c.moments(facts))
        elif isinstance(c, ProfileIs):
            moments.extend(_crossings(facts.profile(c.name), c.test))
        else:
            moments.extend(_crossings(facts.trait(c.name), c.test))
    later = [t for t in moments if t > now]
    return min(later) if later else None


def next_tick_with(found: Iterable[Clock], facts: Facts, events: Iterable[Any]) -> datetime | None:
    """``next_tick`` as far as ``events``, just added to the customer, can bring it forward.

    The caller keeps a due time that was the earliest moment over the events
    it had then; a moment an old event gives now is no earlier than that. So
    only the new events' own moments are looked for (with times seen, which a
    new event may move): the earliest of them and the kept due time is what
    ``next_tick`` over all the events would say.
    """
    now = facts.now
    moments: list[datetime] = []
    for c in found:
        if isinstance(c, Aggregate):
            window = c.within
            assert window is not None
            names, source = c.events, c.source
            for end in (window.start, window.end):
                if not isinstance(end, DaysAgo):
                    continue
                offset = timedelta(days=end.days)
                for e in events:
                    if (
                        (names is None or e.name in names)
                        and (source is None or e.source == source)
                        and e.timestamp >= now - offset
                    ):
                        moments.extend(_around(e.timestamp + offset))
        elif isinstance(c, SinceLast):
            moments.extend(c.moments(facts))  # the latest event may be one of the new
        elif isinstance(c, ProfileIs):
            moments.extend(_crossings(facts.profile(c.name), c.test))
        else:
            moments.extend(_crossings(facts.trait(c.name), c.test))
    later = [t for t in moments if t > now]
    return min(later) if later else None


def _relative(test: Test) -> bool:
    values = test.value if isinstance(test.value, tuple) else (test.value,)
    return any(isinstance(v, DaysAgo) for v in values)


def _window_moves(aggregate: Aggregate, facts: Facts, now: datetime) -> list[datetime]:
    """When an event next enters or leaves the aggregate's window, for each end relative to now.

    An end ``d`` days ago passes an event stamped ``t`` at ``t + d``: the
    window's end lets it in then, its start (inclusive) lets it go just after.
    """
    window = aggregate.within
    if window is None:
        return []
    moves = []
    for end in (window.start, window.end):
        if isinstance(end, DaysAgo):
            offset = timedelta(days=end.days)
            # The first event whose moment t + offset is now or later: its change is still ahead.
            first = facts.first_event_from(aggregate, now - offset)
            if first is not None:
                moves.extend(_around(first + offset))
    return moves


def _around(moment: datetime) -> list[datetime]:
    """A bound that is inclusive changes a test at ``moment``; an exclusive one just after."""
    return [moment, moment + _INSTANT]


def _crossings(seen: object, test: Test) -> list[datetime]:
    """When ``now - N days`` in ``test`` passes the time seen (a first or last seen, a trait)."""
    values = test.value if isinstance(test.value, tuple) else (test.value,)
    offsets = [timedelta(days=v.days) for v in values if isinstance(v, DaysAgo)]
    if not offsets:
        return []
    moment = seen if isinstance(seen, datetime) else None
    if isinstance(seen, str):
        moment = parse_instant(seen)
    if moment is None:
        return []
    return [m for offset in offsets for m in _around(moment + offset)]
