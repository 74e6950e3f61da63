"""Batch reads made of a store's single reads, for a store whose reads cost no round trip.

The embedded store answers ``placements`` and ``customer_sources`` this way:
its graph is in memory, and what it reads from its file (events, history)
is read once for all the customers asked about.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from graph.models import CustomerSource, HistoryEntry, Key, StoredEvent
from graph.store.protocol import GraphReads


class SourceReads(GraphReads, Protocol):
    def events_and_history(
        self, keys: Iterable[Key], one_ids: Iterable[str]
    ) -> tuple[list[StoredEvent], list[HistoryEntry]]:
        """``events_for(keys)`` and ``history(one_ids)``, read together."""
        ...


def placements(
    reads: GraphReads, one_ids: Iterable[str], keys: Iterable[Key]
) -> tuple[dict[str, str], dict[Key, str | None]]:
    wanted_ids, wanted_keys = list(set(one_ids)), list(set(keys))
    canonical = reads.canonical_one_ids(wanted_ids) if wanted_ids else {}
    nodes = reads.nodes(wanted_keys) if wanted_keys else {}
    return canonical, {k: n.one_id for k, n in nodes.items()}


def customer_sources(reads: SourceReads, one_ids: Iterable[str]) -> dict[str, CustomerSource]:
    canonical = reads.canonical_one_ids(set(one_ids))
    survivors = sorted(set(canonical.values()))
    members = reads.members(survivors)
    live = [o for o in survivors if members[o]]
    aliases = {o: reads.aliases(o) for o in live}
    records = reads.nodes({k for o in live for k in members[o]})
    events, history = reads.events_and_history(
        {k for o in live for k in members[o]}, {a for o in live for a in (o, *aliases[o])}
    )
    made: dict[str, CustomerSource] = {}
    for one_id in live:
        mine, named = members[one_id], {one_id, *aliases[one_id]}
        made[one_id] = CustomerSource(
            one_id,
            [records[k] for k in mine if k in records],
            [e for e in events if not mine.isdisjoint(e.keys)],
            aliases[one_id],
            [h for h in history if h.one_id in named or not named.isdisjoint(h.others)],
        )
    return {asked: made[o] for asked, o in canonical.items() if o in made}
