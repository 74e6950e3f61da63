"""One large ``ChangeSet`` as several smaller ones, each whole for the customers it touches.

A database server may cap a transaction's memory (Neo4j's by default at
70% of its heap for all open transactions), and a rebuild after a config
change can touch every identifier. Written in parts, each part holds every
change of the customers it touches: an identifier moving between two
customers, a merge and its alias, a split and its new parts, and their
history travel together, so between two parts every customer reads as it
was or as it will be, never half of it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

from graph.models import ChangeSet


def in_parts(changes: ChangeSet, most: int) -> list[ChangeSet]:
    """``changes`` in parts of about ``most`` identifiers (a larger customer group is one part)."""
    nodes = {n.key: n for n in changes.new_nodes}
    touched = [*nodes, *(k for k in changes.node_updates if k not in nodes)]
    touched += [k for k in changes.assignments if k not in nodes and k not in changes.node_updates]
    if len(touched) <= most or changes.events or changes.removed_nodes:
        return [changes]
    parent: dict[Hashable, Hashable] = {}

    def find(item: Hashable) -> Hashable:
        root = parent.setdefault(item, item)
        while parent[root] != root:
            root = parent[root]
        while parent[item] != root:
            parent[item], item = root, parent[item]
        return root

    def join(a: Hashable, b: Hashable) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    for key in touched:
        record = nodes.get(key) or changes.node_updates.get(key)
        if record is not None and record.one_id is not None:
            join(("key", key), ("one", record.one_id))
        if changes.assignments.get(key) is not None:
            join(("key", key), ("one", changes.assignments[key]))
        find(("key", key))
    for x in changes.customer_updates:
        if x.merged_into is not None:
            join(("one", x.one_id), ("one", x.merged_into))
    for h in changes.history:
        for other in h.others:
            join(("one", h.one_id), ("one", other))
    groups: dict[Hashable, list[str | tuple[str, str]]] = {}
    for key in touched:
        groups.setdefault(find(("key", key)), []).append(key)
    part_of: dict[Hashable, int] = {}
    parts: list[ChangeSet] = [ChangeSet()]
    size = 0
    for root, keys in groups.items():
        if size and size + len(keys) > most:
            parts.append(ChangeSet())
            size = 0
        part_of[root] = len(parts) - 1
        size += len(keys)
    for key in touched:
        part = parts[part_of[find(("key", key))]]
        if key in nodes:
            part.new_nodes.append(nodes[key])
        if key in changes.node_updates:
            part.node_updates[key] = changes.node_updates[key]
        if key in changes.assignments:
            part.assignments[key] = changes.assignments[key]

    def part_for(one_id: str) -> ChangeSet:
        return parts[part_of.get(find(("one", one_id)), len(parts) - 1)]

    for x in changes.new_customers:
        part_for(x.one_id).new_customers.append(x)
    for x in changes.customer_updates:
        part_for(x.one_id).customer_updates.append(x)
    for h in changes.history:
        part_for(h.one_id).history.append(h)
    parts[-1] = replace(parts[-1], settles_deferred=changes.settles_deferred)
    return parts
