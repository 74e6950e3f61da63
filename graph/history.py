"""The merge, split, retirement and restore records of one batch, with the evidence behind each."""

from __future__ import annotations

from graph.batch import Batch
from graph.models import HistoryEntry, Key
from graph.oneids import Renaming
from graph.resolution import Partition

EVIDENCE_LIMIT = 20


def key_text(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def record_history(
    batch: Batch,
    renaming: Renaming,
    result: Partition,
    old: dict[Key, str | None],
    reason: str,
    removed: Key | None,
) -> None:
    events_by_key: dict[Key, list[str]] = {}
    for e in batch.changes.events:
        for k in e.keys:
            events_by_key.setdefault(k, []).append(e.event_id)
    keys_of: dict[str, list[Key]] = {}
    for k, o in renaming.assignment.items():
        keys_of.setdefault(o, []).append(k)
    crossing_of: dict[str, list[dict[str, str]]] = {}
    for a, b in sorted(p for p in result.accepted if old.get(p[0]) != old.get(p[1])):
        crossing_of.setdefault(renaming.assignment[a], []).append(
            {"a": key_text(a), "b": key_text(b)}
        )
    for survivor, absorbed in renaming.merges.items():
        cause = sorted({e for k in keys_of[survivor] for e in events_by_key.get(k, [])})
        batch.changes.history.append(
            HistoryEntry(
                "merge",
                survivor,
                list(absorbed),
                batch.now,
                reason,
                cause[:EVIDENCE_LIMIT],
                crossing_of.get(survivor, [])[:EVIDENCE_LIMIT],
            )
        )
    members_of: dict[str, list[Key]] = {}
    for k, was_in in old.items():
        if was_in is not None:
            members_of.setdefault(was_in, []).append(k)
    changed_of: dict[str, list[dict[str, str]]] = {}
    for k, stored in batch.original.items():
        one_id = stored.one_id
        if stored.linkable and one_id and (k in batch.removed or not batch.pending[k].linkable):
            change = "removed" if k == removed else "shared"
            changed_of.setdefault(one_id, []).append({"identifier": key_text(k), "change": change})
            members_of.setdefault(one_id, []).append(k)
    refused_of: dict[str, list[dict[str, str]]] = {}
    for r in result.refused:
        for one_id in {old.get(r.edge[0]), old.get(r.edge[1])} - {None}:
            assert one_id is not None
            refused_of.setdefault(one_id, []).append(
                {"a": key_text(r.edge[0]), "b": key_text(r.edge[1]), "limit": r.limit_type}
            )
    for one_id in [*renaming.splits, *renaming.retired]:
        evidence = changed_of.get(one_id, []) + refused_of.get(one_id, [])
        cause = sorted({e for k in members_of.get(one_id, []) for e in events_by_key.get(k, [])})
        kind = "split" if one_id in renaming.splits else "retire"
        batch.changes.history.append(
            HistoryEntry(
                kind,
                one_id,
                renaming.splits.get(one_id, []),
                batch.now,
                reason,
                cause[:EVIDENCE_LIMIT],
                evidence[:EVIDENCE_LIMIT],
            )
        )
    for one_id, means in renaming.restored.items():
        # Given back to the part holding what it was issued for: why the part it
        # meant came apart is why it is its own again.
        evidence = changed_of.get(means, []) + refused_of.get(means, []) if means else []
        cause = sorted({e for k in keys_of.get(one_id, []) for e in events_by_key.get(k, [])})
        batch.changes.history.append(
            HistoryEntry(
                "restore",
                one_id,
                [means] if means else [],
                batch.now,
                reason,
                cause[:EVIDENCE_LIMIT],
                evidence[:EVIDENCE_LIMIT],
            )
        )
