"""Times in rules: an instant, or a number of days before the moment of evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graph.tags.facts import Facts


@dataclass(frozen=True, slots=True)
class DaysAgo:
    """``{"daysAgo": N}``: the same rule means a later instant tomorrow than today."""

    days: float

    def at(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)

    def as_json(self) -> dict[str, float]:
        return {"daysAgo": self.days}


Moment = datetime | DaysAgo


def instant(moment: Moment, now: datetime) -> datetime:
    return moment.at(now) if isinstance(moment, DaysAgo) else moment


def parse_instant(text: str) -> datetime | None:
    """An ISO 8601 time in UTC (a naive one is taken as UTC), or None if ``text`` is not one."""
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """Which events an aggregate takes: the last ``days``, or from one moment to another.

    Both ends are inclusive; an end left out is open. ``{"days": N}`` is
    every event at or after N days before now, so an event stamped a little
    in the future (a client's clock) still counts.
    """

    start: Moment | None
    end: Moment | None

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        return (
            None if self.start is None else instant(self.start, now),
            None if self.end is None else instant(self.end, now),
        )


@dataclass(frozen=True, slots=True)
class SinceLast:
    """Whole days since the latest ``event`` reaching each of ``days``: a recency may move then."""

    event: str
    days: tuple[int, ...]

    def moments(self, facts: Facts) -> list[datetime]:
        last = facts.last_event_at(self.event)
        return [] if last is None else [last + timedelta(days=d) for d in self.days]
