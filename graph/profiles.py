"""Unified customer profiles: identifiers by type, traits by survivorship, history.

Traits are not stored per customer but re-derived from the events of the
customer's identifiers, so a split or a merge changes profiles with no
rewriting: each part simply sees its own events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graph.config import TraitsConfig
from graph.models import HistoryEntry, Key, NodeRecord, StoredEvent


@dataclass
class IdentifierView:
    type: str
    value: str
    first_seen: datetime
    last_seen: datetime
    sources: list[str]


@dataclass
class TraitValue:
    name: str
    value: Any
    source: str
    observed_at: datetime


@dataclass
class Profile:
    one_id: str
    identifiers: list[IdentifierView]
    traits: list[TraitValue]
    first_seen: datetime
    last_seen: datetime
    sources: list[str]
    event_count: int
    aliases: list[str] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)


def survive(events: list[StoredEvent], config: TraitsConfig) -> list[TraitValue]:
    """Pick each trait's surviving value: best-ranked source, then the latest observation.

    An explicit null is not an observation: a channel that does not know a
    customer's city must not erase what another channel knew.
    """
    best: dict[str, tuple[tuple[int, float, int], TraitValue]] = {}
    for event in events:
        for name, value in event.traits.items():
            if value is None:
                continue
            ranking = config.source_priority.get(name, ())
            rank = ranking.index(event.source) if event.source in ranking else len(ranking)
            score = (rank, -event.timestamp.timestamp(), -event.seq)
            held = best.get(name)
            if held is None or score < held[0]:
                best[name] = (score, TraitValue(name, value, event.source, event.timestamp))
    return [best[name][1] for name in sorted(best)]


def build_profile(
    one_id: str,
    nodes: list[NodeRecord],
    events: list[StoredEvent],
    config: TraitsConfig,
    aliases: list[str],
    history: list[HistoryEntry],
) -> Profile:
    member_keys: set[Key] = {n.key for n in nodes}
    sources_of: dict[Key, set[str]] = {}
    for event in events:
        for key in event.keys:
            if key in member_keys:
                sources_of.setdefault(key, set()).add(event.source)
    identifiers = [
        IdentifierView(
            n.key[0], n.key[1], n.first_seen, n.last_seen, sorted(sources_of.get(n.key, ()))
        )
        for n in sorted(nodes, key=lambda n: (n.key[0], n.seq))
    ]
    return Profile(
        one_id=one_id,
        identifiers=identifiers,
        traits=survive(events, config),
        first_seen=min(n.first_seen for n in nodes),
        last_seen=max(n.last_seen for n in nodes),
        sources=sorted({e.source for e in events}),
        event_count=len(events),
        aliases=aliases,
        history=history,
    )
