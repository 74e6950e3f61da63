"""Profiles as the API writes them, for ``idgraph export``: one JSON object per customer.

The field names and shapes are the GraphQL ``Profile``'s (``oneId``,
``firstSeen``, ``traitValues``, identifiers grouped by type, history kinds in
capitals), so a file written here reads like the answers a client already
parses; a test holds the two to the same document.
"""

from __future__ import annotations

from typing import Any

from graph.models import HistoryEntry
from graph.profiles import Profile


def profile_document(p: Profile) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for i in p.identifiers:
        groups.setdefault(i.type, []).append(
            {
                "type": i.type,
                "value": i.value,
                "firstSeen": i.first_seen.isoformat(),
                "lastSeen": i.last_seen.isoformat(),
                "sources": i.sources,
            }
        )
    return {
        "oneId": p.one_id,
        "identifiers": [{"type": t, "identifiers": found} for t, found in groups.items()],
        "traits": [
            {
                "name": t.name,
                "value": t.value,
                "source": t.source,
                "observedAt": t.observed_at.isoformat(),
            }
            for t in p.traits
        ],
        "traitValues": {t.name: t.value for t in p.traits},
        "firstSeen": p.first_seen.isoformat(),
        "lastSeen": p.last_seen.isoformat(),
        "sources": p.sources,
        "eventCount": p.event_count,
        "aliases": p.aliases,
        "history": [_history(h) for h in p.history],
    }


def _history(h: HistoryEntry) -> dict[str, Any]:
    return {
        "kind": h.kind.upper(),
        "oneId": h.one_id,
        "others": h.others,
        "at": h.at.isoformat(),
        "reason": h.reason,
        "eventIds": h.event_ids,
        "evidence": h.evidence,
    }
