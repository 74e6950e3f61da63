"""What a condition may look at: one customer's traits, profile, events, tags and account links.

``Facts`` is the question a condition asks; ``CustomerFacts`` answers it from
a customer's events as a recompute from scratch would, and is the reference
every faster answer (rollups) is held to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from graph.tags.aggregates import EventFact, aggregate_events, selected
from graph.tags.conditions import Aggregate


class _Missing:
    """A value nobody knows: every test of it is false but ``missing``."""

    _one: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._one is None:
            cls._one = super().__new__(cls)
        return cls._one

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class Facts(Protocol):
    now: datetime
    tags: dict[str, Any]  # the customer's tag values found so far, read by ``tag``

    def trait(self, name: str) -> Any: ...

    def profile(self, name: str) -> Any: ...

    def aggregate(self, aggregate: Aggregate) -> Any: ...

    def tag(self, tag_id: str) -> Any: ...

    def links(self) -> Sequence[Mapping[str, Any]]:
        """Each account link: the account's fields and this customer's link's, by rule name."""
        ...

    def first_event_from(self, aggregate: Aggregate, moment: datetime) -> datetime | None:
        """When the aggregate's earliest event at or after ``moment`` happened, window aside."""
        ...

    def last_event_at(self, name: str) -> datetime | None:
        """When the latest event named ``name`` up to now happened (None: there was none)."""
        ...


@dataclass
class CustomerFacts:
    """A customer's facts from its profile and its events, every aggregate computed anew."""

    now: datetime
    traits: Mapping[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    sources: Sequence[str]
    events: Sequence[EventFact]
    account_links: Sequence[Mapping[str, Any]] = ()
    tags: dict[str, Any] = field(default_factory=dict)  # filled in as tags are evaluated

    def trait(self, name: str) -> Any:
        value = self.traits.get(name)
        return MISSING if value is None else value

    def profile(self, name: str) -> Any:
        found: Any = {
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
            "eventCount": len(self.events),
            "sources": list(self.sources),
        }[name]
        return MISSING if found is None else found

    def aggregate(self, aggregate: Aggregate) -> Any:
        found = aggregate_events(aggregate, self.events, self.now)
        return MISSING if found is None else found

    def tag(self, tag_id: str) -> Any:
        return self.tags.get(tag_id, MISSING)

    def links(self) -> Sequence[Mapping[str, Any]]:
        return self.account_links

    def first_event_from(self, aggregate: Aggregate, moment: datetime) -> datetime | None:
        unwindowed = Aggregate(
            aggregate.function, aggregate.events, aggregate.property_name, aggregate.source, None
        )
        later = [e.timestamp for e in selected(unwindowed, self.events, self.now)]
        return min((t for t in later if t >= moment), default=None)

    def last_event_at(self, name: str) -> datetime | None:
        stamps = (e.timestamp for e in self.events if e.name == name and e.timestamp <= self.now)
        return max(stamps, default=None)


def event_facts(events: Iterable[Any]) -> list[EventFact]:
    """Stored events as aggregates read them (anything with the ``StoredEvent`` fields)."""
    return [EventFact(e.timestamp, e.seq, e.name, e.source, e.properties or {}) for e in events]
